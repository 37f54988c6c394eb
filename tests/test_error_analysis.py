"""Error analysis for every task (fastai's interpretation): the numbers on hand-made cases, and the
figures and tables that train and eval write."""
import csv
import json

import pytest
import torch

import cnnlab
from cnnlab import api, cli
from cnnlab.data import load_dataset
from cnnlab.images import save_image
from cnnlab.tasks.error_analysis import (confident_disagreement, detection_errors, image_iou, likely_missing_labels,
                                         match_boxes, mistakes_first, most_confused, top_losses, worst_images)

NEEDS_PYCOCOTOOLS = pytest.mark.skipif(__import__("importlib").util.find_spec("pycocotools") is None,
                                       reason="pycocotools not installed")


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


# ----------------------------------------------------------------------------- classification numbers
def test_most_confused_reads_the_off_diagonal_most_frequent_first():
    confusion = [[5, 2, 0],   # rows: true a, b, c; columns: predicted
                 [4, 7, 1],
                 [2, 0, 9]]
    pairs = most_confused(confusion, ["a", "b", "c"])
    assert pairs == [("b", "a", 4), ("a", "b", 2), ("c", "a", 2), ("b", "c", 1)]  # ties in class order
    assert most_confused(confusion, ["a", "b", "c"], min_count=2, top=2) == [("b", "a", 4), ("a", "b", 2)]
    assert most_confused(torch.eye(3, dtype=torch.int64) * 5, ["a", "b", "c"]) == []


def test_top_losses_and_mistakes_first():
    logits = torch.tensor([[4.0, 0.0], [0.0, 3.0], [1.0, 0.0], [0.0, 0.5], [2.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1, 0])  # items 1 and 2 are wrong; 1 the more confidently
    losses, idx = top_losses(logits, labels, 3)
    assert idx.tolist() == [1, 2, 3]
    assert losses[0] == pytest.approx(torch.nn.functional.cross_entropy(logits[1:2], labels[1:2]).item())
    order = mistakes_first(logits, labels)
    assert sorted(order[:2].tolist()) == [1, 2] and sorted(order.tolist()) == [0, 1, 2, 3, 4]


# ----------------------------------------------------------------------------- detection numbers
def test_detection_errors_on_hand_made_boxes():
    truth = {"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]),
             "labels": torch.tensor([1, 1, 2])}  # cat, cat, dog
    pred = {"boxes": torch.tensor([[1.0, 1, 10, 10],     # cat 0.8: a duplicate of the first cat (FP)
                                   [0.0, 0, 10, 10],     # cat 0.9: the first cat (TP), taken first by score
                                   [20, 20, 30, 30],     # dog 0.7 on the second cat: wrong class (FP)
                                   [40, 40, 50, 50]]),   # dog 0.3: below the score threshold, not counted
            "labels": torch.tensor([1, 1, 2, 2]), "scores": torch.tensor([0.8, 0.9, 0.7, 0.3])}
    e = detection_errors([pred], [truth], ["cat", "dog"])
    assert e["per_class"] == {"cat": {"tp": 1, "fp": 1, "missed": 1}, "dog": {"tp": 0, "fp": 1, "missed": 1}}
    im = e["per_image"][0]
    assert (im["tp"], im["fp"], im["missed"]) == (1, 2, 2)
    assert im["matched"].tolist() == [False, True, False] and im["found"].tolist() == [True, False, False]
    # IoU below 0.5 does not match; no predictions or no truth: all false positives / all missed
    matched, found = match_boxes(torch.tensor([[0.0, 0, 10, 20]]), torch.tensor([1]), torch.tensor([0.9]),
                                 torch.tensor([[0.0, 0, 10, 8]]), torch.tensor([1]))
    assert not matched.any() and not found.any()
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "scores": torch.zeros(0)}
    e = detection_errors([empty, pred], [truth, {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}],
                         ["cat", "dog"])
    assert e["per_class"] == {"cat": {"tp": 0, "fp": 2, "missed": 2}, "dog": {"tp": 0, "fp": 1, "missed": 1}}
    assert worst_images(e["per_image"], 5) == [0, 1] or worst_images(e["per_image"], 5) == [1, 0]
    assert worst_images([{"fp": 0, "missed": 0}, {"fp": 1, "missed": 0}, {"fp": 2, "missed": 1}], 5) == [2, 1]


# ----------------------------------------------------------------------------- segmentation numbers
def test_likely_missing_labels_are_confident_detections_far_from_every_labelled_box():
    preds = [{"boxes": torch.tensor([[0., 0, 10, 10], [50, 50, 60, 60], [100, 100, 110, 110], [0, 0, 9, 9]]),
              "scores": torch.tensor([0.95, 0.9, 0.5, 0.85]), "labels": torch.tensor([1, 2, 1, 2])}]
    truth = [{"boxes": torch.tensor([[1., 1, 11, 11]]), "labels": torch.tensor([2])}]  # near boxes 0 and 3 only
    assert likely_missing_labels(preds, truth) == [[1]]  # box 2 is far too, but not confident
    assert likely_missing_labels(preds, [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}]) == [[0, 1, 3]]


def test_confident_disagreement_counts_pixels_by_mask_and_predicted_class():
    probs = torch.zeros(1, 3, 2, 3)
    probs[0, 0], probs[0, 1, 0, :2], probs[0, 2, 1, 2] = 1.0, 1.0, 1.0   # predicted: [[1, 1, 0], [0, 0, 2]]
    probs[0, 0, 0, :2], probs[0, 0, 1, 2] = 0.0, 0.0
    probs[0, :, 1, 1] = torch.tensor([0.5, 0.3, 0.2])                  # not confident: left out
    mask = torch.tensor([[[0, 0, 0], [0, 2, 255]]])
    assert confident_disagreement(probs, mask) == [[(0, 1, 2)]]        # two mask-0 pixels predicted 1; 255 ignored


def test_image_iou_by_hand_and_ignored_pixels():
    mask = torch.tensor([[[0, 0], [1, 1]],
                         [[0, 0], [0, 255]],
                         [[255, 255], [255, 255]]], dtype=torch.uint8)
    pred = torch.tensor([[[0, 0], [1, 1]],       # perfect: 1.0
                         [[0, 1], [0, 1]],       # class 0: 2/3, class 1: 0/1 (predicted, absent) -> 1/3
                         [[0, 0], [0, 0]]])      # nothing labelled: NaN
    iou = image_iou(pred, mask, 2)
    assert iou[0] == pytest.approx(1.0) and iou[1] == pytest.approx(1 / 3) and torch.isnan(iou[2])


# ----------------------------------------------------------------------------- written by train and eval
def test_classification_train_and_eval_write_the_error_analysis(tmp_path, capsys):
    out = tmp_path / "run"
    result = cnnlab.train(data="digits", epochs=1, batch_size=64, workers=0, out=str(out), log=None)
    for name in ("predictions.png", "top_losses.png", "most_confused.csv", "confusion_matrix.png"):
        assert (out / name).stat().st_size > 0 and str(out / name) in result.plots, name
    rows = _rows(out / "most_confused.csv")
    assert rows[0] == ["true", "predicted", "images"]
    confusion = result.test["confusion_matrix"]
    classes = [str(d) for d in range(10)]
    assert [(t, p, int(n)) for t, p, n in rows[1:]] == most_confused(confusion, classes)
    counts = [int(n) for _, _, n in rows[1:]]
    assert counts == sorted(counts, reverse=True)
    assert sum(counts) == result.test["count"] - sum(confusion[i][i] for i in range(10))

    assert cli.main(["eval", str(out / "best.pt"), "--plots", str(tmp_path / "eval")]) == 0
    printed = capsys.readouterr().out
    assert "most confused" in printed and "top_losses.png" in printed
    first = rows[1]
    assert any(line.split() == first for line in printed.splitlines())  # the worst pair, printed as a row
    for name in ("predictions.png", "top_losses.png", "most_confused.csv"):
        assert (tmp_path / "eval" / name).stat().st_size > 0, name


def _coco(root, n=12):
    """Scenes of red (cat) and blue (dog) rectangles on grey, in COCO layout."""
    (root / "images").mkdir(parents=True)
    doc = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    for i in range(n):
        img = torch.full((3, 48, 64), 120, dtype=torch.uint8)
        for k in range(1 + i % 2):
            x0, y0, cls = 4 + 3 * i if k == 0 else 44, 4 + 22 * k, (i + k) % 2
            img[:, y0:y0 + 12, x0:x0 + 14] = torch.tensor([220, 30, 30] if cls == 0 else [30, 30, 220])[:, None, None]
            doc["annotations"].append({"id": len(doc["annotations"]), "image_id": i, "category_id": 1 + cls,
                                       "bbox": [x0, y0, 14, 12], "iscrowd": 0})
        save_image(img, root / "images" / f"{i}.png")
        doc["images"].append({"id": i, "file_name": f"{i}.png", "width": 64, "height": 48})
    path = root / "annotations.json"
    path.write_text(json.dumps(doc))
    return path


@NEEDS_PYCOCOTOOLS
def test_detection_train_and_eval_write_errors_per_class(tmp_path, capsys):
    data = _coco(tmp_path / "data")
    out = tmp_path / "run"
    api.train(task="detect", data=str(data), model="lecture_cnn", epochs=1, batch_size=4, lr=0.01, out=str(out),
              val_fraction=0.25,
              workers=0, log=None, model_args={"widths": [16, 32, 32], "anchor_sizes": [12, 24]})
    rows = _rows(out / "detection_errors.csv")
    assert rows[0] == ["class", "correct", "false_positives", "missed"] and [r[0] for r in rows[1:]] == ["cat", "dog"]
    test = load_dataset(str(data), "test", task="detect", val_fraction=0.25)  # carved: the run scores it at the end
    boxes = sum(len(t["boxes"]) for t in test.targets)
    assert sum(int(r[1]) + int(r[3]) for r in rows[1:]) == boxes  # every true box is found or missed
    if any(int(r[2]) + int(r[3]) for r in rows[1:]):
        assert (out / "errors.png").stat().st_size > 0

    assert _rows(out / "likely_missing_labels.csv")[0] == ["image", "class", "score", "x0", "y0", "x1", "y1"]
    assert cli.main(["eval", str(out / "best.pt"), "--data", str(data), "--split", "test", "--plots",
                     str(tmp_path / "eval")]) == 0
    printed = capsys.readouterr().out
    assert "errors at IoU 0.5" in printed and "missed" in printed
    assert _rows(tmp_path / "eval" / "detection_errors.csv") == rows  # the same model, the same split
    m = api.evaluate(str(out / "best.pt"), data=str(data), split="test")
    assert [[c, str(r["tp"]), str(r["fp"]), str(r["missed"])] for c, r in m["errors"].items()] == rows[1:]


def test_segmentation_worst_images_lowest_iou_first(tmp_path):
    from cnnlab.engine.config import TrainConfig
    from cnnlab.tasks import segment_plots
    from cnnlab.tasks.segment import SegmentTask

    data = load_dataset("shapes", "val", task="segment")
    data = data.subset(torch.arange(12))
    cfg = TrainConfig(task="segment", data="shapes", model="unet", model_args={"widths": [8, 16]})
    task = SegmentTask.from_data(cfg, data)
    torch.manual_seed(0)
    model = task.build_model(cfg).eval()
    metrics = {"per_class_iou": {c: 0.5 for c in task.classes}, "miou": 0.5}
    paths = segment_plots.write_all(task, tmp_path, [], model, data, metrics)
    assert str(tmp_path / "worst_iou.png") in paths and (tmp_path / "worst_iou.png").stat().st_size > 0
    rows = _rows(tmp_path / "worst_iou.csv")[1:]
    ious = [float(v) for _, v in rows]
    assert len(rows) == 12 and ious == sorted(ious)
    with torch.no_grad():
        truth = image_iou(task.logits(model, data.images).argmax(1), data.labels, len(task.classes))
    assert ious[0] == pytest.approx(float(truth.min()), abs=1e-6)
    assert rows[0][0] == f"image {int(truth.argmin())}"
    assert _rows(tmp_path / "likely_mask_errors.csv")[0] == ["image", "mask_class", "predicted_class", "pixels", "share"]


def test_captions_lowest_cider_first_with_their_references(tmp_path):
    from cnnlab.tasks.caption_plots import worst_captions

    references = [["a dog runs on the grass", "a brown dog running"], ["a man rides a bike", "a cyclist on a road"],
                  ["two children play in the sand", "kids on a beach"]]
    captions = ["a dog runs on the grass", "a cat sleeps on a sofa", "two children play on a beach"]
    images = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    paths = worst_captions(images, captions, references, tmp_path, n=2)
    assert paths[0].stat().st_size > 0
    rows = _rows(tmp_path / "worst_captions.csv")[1:]
    assert [int(r[0]) for r in rows] == [1, 2, 0]  # the unrelated caption first, the exact one last
    assert float(rows[0][1]) < float(rows[1][1]) < float(rows[2][1])
    assert rows[0][3] == "a man rides a bike | a cyclist on a road"


def test_curves_after_one_epoch_have_whole_epoch_ticks(tmp_path):
    import matplotlib.pyplot as plt

    from cnnlab.tasks import curves

    closed = []
    real_close = plt.close
    plt.close = lambda fig=None: closed.append(fig) or real_close(fig)
    try:
        curves.plot_curves([{"epoch": 1, "train_loss": 0.7, "val_top1": 0.8}], tmp_path / "c.png",
                           [("loss", "", [("train_loss", "train")]), ("acc", "", [("val_top1", "val")])], ylim=(0, 1))
    finally:
        plt.close = real_close
    ax = closed[0].axes[0]
    assert ax.get_xlim() == (0.5, 1.5)
    assert all(float(t).is_integer() for t in ax.get_xticks() if 0.5 <= t <= 1.5)
    assert (tmp_path / "c.png").stat().st_size > 0
