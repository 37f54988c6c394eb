"""Detection: data formats and checks, COCO metrics against pycocotools, models, train/eval/predict."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from cnnlab import api, cli
from cnnlab.data import load_dataset
from cnnlab.data.detection import DetectionImages
from cnnlab.data.loader import Batches
from cnnlab.errors import CnnlabError
from cnnlab.images import save_image
from cnnlab.models import get_model
from cnnlab.tasks.detect import DetectTask, detection_metrics

HAS_EFFICIENTNET = importlib.util.find_spec("efficientnet_lite_pytorch") is not None
NEEDS_PYCOCOTOOLS = pytest.mark.skipif(importlib.util.find_spec("pycocotools") is None,
                                       reason="pycocotools not installed (pip install 'cnnlab[detect]')")
CLASSES = ["cat", "dog"]


# ----------------------------------------------------------------------------- a tiny dataset on disk
def _scene(i: int) -> tuple[torch.Tensor, list[list[float]], list[int]]:
    """A 48x64 image with coloured rectangles (class 0 red, class 1 blue) on grey."""
    g = torch.Generator().manual_seed(i)
    img = torch.full((3, 48, 64), 120, dtype=torch.uint8)
    boxes, labels = [], []
    for k in range(1 + i % 2):
        x0, y0 = int(torch.randint(0, 40, (1,), generator=g)) if k == 0 else 44, 4 + 22 * k
        w, h = 14 + 2 * k, 12
        cls = (i + k) % 2
        img[:, y0:y0 + h, x0:x0 + w] = torch.tensor([220, 30, 30] if cls == 0 else [30, 30, 220])[:, None, None]
        boxes.append([x0, y0, x0 + w, y0 + h])
        labels.append(cls)
    return img, boxes, labels


def write_coco(root: Path, n: int = 6, extra: dict | None = None) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    doc = {"images": [], "annotations": [], "categories": [{"id": 10 + c, "name": n_} for c, n_ in enumerate(CLASSES)]}
    for i in range(n):
        img, boxes, labels = _scene(i)
        save_image(img, root / "images" / f"{i}.png")
        doc["images"].append({"id": i, "file_name": f"{i}.png", "width": 64, "height": 48})
        for b, c in zip(boxes, labels):
            doc["annotations"].append({"id": len(doc["annotations"]), "image_id": i, "category_id": 10 + c,
                                       "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "iscrowd": 0})
    for key, value in (extra or {}).items():
        doc[key] += value
    path = root / "annotations" / "instances_train.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def write_voc(root: Path, n: int = 6) -> Path:
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for i in range(n):
        img, boxes, labels = _scene(i)
        save_image(img, root / "JPEGImages" / f"{i}.png")
        objs = "".join(f"<object><name>{CLASSES[c]}</name><bndbox><xmin>{b[0] + 1}</xmin><ymin>{b[1] + 1}</ymin>"
                       f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for b, c in zip(boxes, labels))
        (root / "Annotations" / f"{i}.xml").write_text(
            f"<annotation><filename>{i}.png</filename><size><width>64</width><height>48</height></size>{objs}</annotation>")
    return root


def write_yolo(root: Path, n: int = 6) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("\n".join(CLASSES))
    for i in range(n):
        img, boxes, labels = _scene(i)
        save_image(img, root / "images" / f"{i}.png")
        lines = [f"{c} {(b[0] + b[2]) / 2 / 64} {(b[1] + b[3]) / 2 / 48} {(b[2] - b[0]) / 64} {(b[3] - b[1]) / 48}"
                 for b, c in zip(boxes, labels)]
        (root / "labels" / f"{i}.txt").write_text("\n".join(lines))
    return root


# ----------------------------------------------------------------------------- formats and checks
def test_three_formats_read_the_same_boxes(tmp_path):
    sets = [load_dataset(write_coco(tmp_path / "coco"), "train", task="detect", val_fraction=0.0),
            load_dataset(write_voc(tmp_path / "voc"), "train", task="detect", val_fraction=0.0),
            load_dataset(write_yolo(tmp_path / "yolo"), "train", task="detect", val_fraction=0.0)]
    for data in sets:
        assert isinstance(data, DetectionImages) and data.classes == CLASSES
        assert data.images.shape == (6, 3, 48, 64)
        for i, t in enumerate(data.targets):
            _, boxes, labels = _scene(i)
            assert torch.allclose(t["boxes"], torch.tensor(boxes, dtype=torch.float32), atol=1e-4)
            assert t["labels"].tolist() == [c + 1 for c in labels]


def test_val_split_is_carved_from_train(tmp_path):
    path = write_coco(tmp_path)
    train = load_dataset(path, "train", task="detect", val_fraction=0.34)
    val = load_dataset(path, "val", task="detect", val_fraction=0.34)
    assert (len(train), len(val)) == (4, 2) and not set(train.files) & set(val.files)


def test_annotation_checks_clip_drop_and_count_negatives(tmp_path):
    extra = {"images": [{"id": 99, "file_name": "0.png", "width": 64, "height": 48}],  # no boxes: a negative
             "annotations": [{"id": 500, "image_id": 1, "category_id": 10, "bbox": [50, 40, 30, 20]},  # leaves it
                             {"id": 501, "image_id": 2, "category_id": 11, "bbox": [5, 5, 0, 9]}]}  # zero width
    path = write_coco(tmp_path, extra=extra)
    data = load_dataset(path, "train", task="detect", val_fraction=0.0)
    report = "\n".join(data.report)
    assert "clipped 1 boxes" in report and "1.png (1)" in report
    assert "dropped 1 boxes of zero or negative area" in report and "2.png (1)" in report
    assert "1 images without boxes" in report
    assert [64.0, 48.0] == data.targets[1]["boxes"][-1, 2:].tolist()
    with pytest.raises(CnnlabError, match=r"1 boxes outside the image in 1 files: .*1\.png"):
        load_dataset(path, "train", task="detect", val_fraction=0.0, out_of_image="reject")


@pytest.mark.parametrize("extra, message", [
    ({"annotations": [{"id": 9, "image_id": 3, "category_id": 77, "bbox": [1, 1, 5, 5]}]},
     r"unknown category ids 77 in 1 files: .*3\.png"),
    ({"images": [{"id": 2, "file_name": "5.png", "width": 64, "height": 48}]}, r"1 duplicate image ids: 2 \("),
])
def test_annotation_errors_name_files(tmp_path, extra, message):
    path = write_coco(tmp_path, extra=extra)
    with pytest.raises(CnnlabError, match=message):
        load_dataset(path, "train", task="detect")


def test_yolo_unknown_class_and_bad_line(tmp_path):
    root = write_yolo(tmp_path)
    (root / "labels" / "1.txt").write_text("5 0.5 0.5 0.2 0.2")
    with pytest.raises(CnnlabError, match=r"unknown category ids 5 in 1 files: .*1\.png"):
        load_dataset(root, "train", task="detect")
    (root / "labels" / "1.txt").write_text("0 0.5 zero 0.2 0.2")
    with pytest.raises(CnnlabError, match=r"1\.txt:1: expected 'class cx cy w h'"):
        load_dataset(root, "train", task="detect")


def test_builtin_shapes_scenes_and_batches():
    data = load_dataset("shapes", "val", task="detect")
    assert data.images.shape == (500, 3, 64, 64) and len(data.classes) == 6
    counts = [len(t["boxes"]) for t in data.targets]
    assert min(counts) == 1 and max(counts) == 3
    batches = Batches(data, 64, torch.device("cpu"), shuffle=True, seed=3)
    images, targets = next(iter(batches.epoch(1)))
    first = int(torch.randperm(500, generator=torch.Generator().manual_seed(3 * 100_003 + 1))[0])
    assert torch.equal(images[0], data.images[first]) and torch.equal(targets[0]["boxes"], data.targets[first]["boxes"])


def test_flip_mirrors_boxes_with_the_image():
    img, boxes, labels = _scene(0)
    task = DetectTask(CLASSES, (3, 48, 64), flip=True)
    seed = next(s for s in range(50) if torch.rand(1, generator=torch.Generator().manual_seed(s)) < 0.5)
    target = {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels) + 1}
    images, targets = task.augment(img[None], [target], torch.Generator().manual_seed(seed))
    x0, y0, x1, y1 = targets[0]["boxes"][0].round().int().tolist()
    assert torch.equal(images[0], img.flip(-1))
    assert (images[0, 0, y0:y1, x0:x1] > 200).all() and (x1 - x0, y1 - y0) == (boxes[0][2] - boxes[0][0], 12)


# ----------------------------------------------------------------------------- metrics = pycocotools
@NEEDS_PYCOCOTOOLS
def test_map_equals_pycocotools_cocoeval():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    g = torch.Generator().manual_seed(0)
    targets, preds = [], []
    for i in range(40):
        n = 1 + i % 3
        xy = torch.rand(n, 2, generator=g) * 40
        boxes = torch.cat([xy, xy + 8 + torch.rand(n, 2, generator=g) * 20], 1)
        labels = torch.randint(1, 4, (n,), generator=g)
        targets.append({"boxes": boxes, "labels": labels})
        jitter = boxes + torch.randn(n, 4, generator=g) * 2  # near misses at high IoU
        false = torch.cat([xy + 30, xy + 40], 1)[:1]
        preds.append({"boxes": torch.cat([jitter, false]), "scores": torch.rand(n + 1, generator=g),
                      "labels": torch.cat([torch.where(torch.rand(n, generator=g) < 0.8, labels, 1 + labels % 3),
                                           labels[:1]])})
    ours = detection_metrics(preds, targets, ["a", "b", "c"])

    def xywh(b):
        return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]

    gt = {"images": [{"id": i} for i in range(40)], "categories": [{"id": c} for c in (1, 2, 3)],
          "annotations": [{"id": k, "image_id": i, "category_id": int(lab), "bbox": xywh(b), "iscrowd": 0,
                           "area": float((b[2] - b[0]) * (b[3] - b[1]))}
                          for i, t in enumerate(targets) for k, (b, lab) in
                          enumerate(zip(t["boxes"], t["labels"]), start=100 * i + 1)]}  # ids from 1: COCOeval treats id 0 as no match
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    dets = coco.loadRes([{"image_id": i, "category_id": int(lab), "bbox": xywh(b), "score": float(s)}
                         for i, p in enumerate(preds) for b, lab, s in zip(p["boxes"], p["labels"], p["scores"])])
    ev = COCOeval(coco, dets, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert 0.1 < ours["map"] < 0.9  # a non-trivial case
    for key, k in (("map", 0), ("map50", 1), ("map75", 2), ("mar_1", 6), ("mar_100", 8)):
        assert ours[key] == pytest.approx(ev.stats[k], abs=1e-6), key
    precision = ev.eval["precision"][:, :, :, 0, 2]  # (iou, recall, class) at all areas, 100 detections
    for c, name in enumerate(["a", "b", "c"]):
        p = precision[:, :, c]
        assert ours["per_class_ap"][name] == pytest.approx(float(p[p > -1].mean()), abs=1e-6)


# ----------------------------------------------------------------------------- models
@pytest.mark.parametrize("name, kwargs", [
    ("fasterrcnn", {"backbone": "lecture_cnn"}),
    ("fasterrcnn", {"backbone": "lecture_cnn", "fpn": True}),
    ("fasterrcnn", {"backbone": "resnet18"}),
    pytest.param("fasterrcnn", {"backbone": "efficientnet_lite0", "fpn": True, "pretrained": True},
                 marks=pytest.mark.skipif(not HAS_EFFICIENTNET, reason="efficientnet-lite packages not installed")),
    ("rcnn", {"window_sizes": (12, 24), "proposals": 50}),
])
def test_detector_losses_and_predictions(name, kwargs):
    torch.manual_seed(0)
    model = get_model(name, num_classes=3, min_size=48, max_size=64, **kwargs)
    img, boxes, labels = _scene(1)
    images = [img.float() / 255] * 2
    targets = [{"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels) + 1}] * 2
    losses = model(images, targets)
    assert {"loss_classifier", "loss_box_reg"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    head = [p for n, p in model.named_parameters() if "cls_score" in n]
    assert head and all(p.grad is not None and p.grad.abs().sum() > 0 for p in head)
    model.eval()
    with torch.no_grad():
        out = model(images)
        props = model.propose(images, top=5)
    assert set(out[0]) == {"boxes", "labels", "scores"} and out[0]["boxes"].shape[1] == 4
    assert props[0].shape == (5, 4) and (props[0][:, 2:] <= torch.tensor([64.0, 48.0]) + 1e-3).all()


@pytest.mark.parametrize("sampling_ratio", [1, 2])
def test_sparse_roi_align_equals_torchvision(sampling_ratio):
    from torchvision.ops import roi_align

    from cnnlab.models.roi_align import roi_align_sparse

    torch.manual_seed(0)
    features = torch.randn(3, 5, 8, 10, requires_grad=True)
    xy = torch.rand(30, 2) * 90 - 8  # some boxes reach past the map's edges
    rois = torch.cat([torch.randint(0, 3, (30, 1)).float(), xy, xy + torch.rand(30, 2) * 40 + 0.5], 1)
    ours = roi_align_sparse(features, rois, 7, 1 / 8, sampling_ratio)
    ref = roi_align(features, rois, 7, 1 / 8, sampling_ratio, aligned=True)
    assert torch.allclose(ours, ref, atol=1e-5)
    grad = torch.randn_like(ref)
    g_ours, = torch.autograd.grad(ours, features, grad)
    g_ref, = torch.autograd.grad(ref, features, grad)
    assert torch.allclose(g_ours, g_ref, atol=1e-4)


def test_classic_proposals_find_a_contrasting_object():
    from torchvision.ops import box_iou

    model = get_model("rcnn", num_classes=2)
    img = torch.full((3, 64, 64), 0.5)
    img[:, 20:44, 8:30] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]
    top = model.propose([img], top=3)[0]
    assert box_iou(top, torch.tensor([[8.0, 20.0, 30.0, 44.0]])).max() > 0.6


# ----------------------------------------------------------------------------- train, eval, predict
@NEEDS_PYCOCOTOOLS
def test_train_eval_predict_through_cli(tmp_path, capsys):
    path = write_coco(tmp_path / "data", n=12)
    run = api.train(task="detect", data=str(path), epochs=2, batch_size=4, lr=0.01, out=str(tmp_path / "run"),
                    val_fraction=0.25, log=lambda *a: None,
                    model_args={"widths": [16, 32, 32], "anchor_sizes": [12, 24]})
    assert {"map", "map50", "map75", "epoch"} <= set(run.best)
    assert (tmp_path / "run" / "detections.png").exists()
    assert "train_acc" not in run.history[0] and run.history[0]["train_loss"] > 0
    best = str(tmp_path / "run" / "best.pt")

    assert cli.main(["eval", best, "--task", "detect", "--data", str(path), "--split", "val", "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert {"map", "map50", "map75", "mar_100"} <= set(m) and 0 <= m["map"] <= m["map50"] <= 1
    assert cli.main(["eval", best, "--task", "classify"]) == 2
    assert "trained for --task detect" in capsys.readouterr().err

    big = tmp_path / "big.png"  # predicted at the model's size, boxes reported in this image's pixels
    save_image(_scene(3)[0].repeat_interleave(2, 1).repeat_interleave(2, 2), big)
    assert cli.main(["predict", best, "--task", "detect", str(big), "--json", "--show-proposals",
                     "--score-threshold", "0.0", "--proposals", "4"]) == 0
    [r] = json.loads(capsys.readouterr().out)
    assert (r["width"], r["height"]) == (128, 96) and len(r["proposals"]) == 4
    assert r["detections"] and all(0 <= d["box"][2] <= 128 and 0 <= d["box"][3] <= 96 for d in r["detections"])
    assert all(d["class"] in CLASSES and 0 <= d["score"] <= 1 for d in r["detections"])
    assert cli.main(["predict", best, str(big), "--out", str(tmp_path / "drawn"), "--show-proposals"]) == 0
    assert (tmp_path / "drawn" / "big_detections.png").exists()


def test_threads_sharing_a_detector_keep_their_own_thresholds_and_the_models_survive():
    from concurrent.futures import ThreadPoolExecutor

    from cnnlab.deploy.pytorch_model import LoadedModel

    torch.manual_seed(0)
    task = DetectTask(["a", "b"], (3, 64, 64))
    model = get_model("fasterrcnn", num_classes=3, widths=[8, 16, 16], anchor_sizes=[12, 24]).eval()
    model.set_thresholds(0.3, 0.4)  # the model's own thresholds, not the evaluation defaults
    lm = LoadedModel(model, task, torch.device("cpu"), "fasterrcnn")
    images = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(3)]

    def run(threshold: float) -> list[float]:
        options = task.options({"score_threshold": threshold})
        return [d["score"] for r in task.predict(lm, images, options) for d in r["detections"]]

    low, high = 0.0, 0.99  # an untrained detector scores near 1/3: everything passes 0, nothing passes 0.99
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(run, [low, high] * 4))
    assert all(scores for scores in found[0::2]) and all(not scores for scores in found[1::2])
    assert model.thresholds() == (0.3, 0.4)
