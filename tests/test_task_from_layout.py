"""The task comes from the data: each layout, built small, is read for its own task without
--task; a --task that contradicts it, a class-folder tree that is another task's dataset, and
eval/predict of a model on another task's dataset are refused; `data check` reports per split.

Before: a VOC folder, an images/ + masks/ folder and a captions folder given without --task
trained a classifier over their folder names and printed a fine accuracy.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnnlab
from cnnlab import cli
from cnnlab.data.layout import find_task, resolve_task
from cnnlab.errors import CnnlabError

SIDE = 32
QUIET = dict(epochs=1, workers=0, plots=False, log=None, batch_size=4)
TINY = {"classify": dict(model="lecture_cnn"),  # the lecture's small models (the default on disk data is a recipe)
        "segment": dict(model="lecture_cnn"),
        "detect": dict(model="lecture_cnn", model_args={"widths": [8, 16, 16], "anchor_sizes": [8, 16]}, lr=0.01),
        "caption": dict(model="lecture_cnn")}


def picture(i: int) -> tuple[np.ndarray, list[int], int]:
    """A grey RGB image with one rectangle (class i % 2: red or blue); its box and class."""
    cls, x0, y0 = i % 2, 2 + 3 * (i % 4), 4 + 2 * (i % 3)
    img = np.full((SIDE, SIDE, 3), 120, np.uint8)
    img[:, :, 1] = 100 + 10 * i % 50  # every image distinct, so none is a duplicate of another
    img[y0:y0 + 12, x0:x0 + 14] = (220, 30, 30) if cls == 0 else (30, 30, 220)
    return img, [x0, y0, x0 + 14, y0 + 12], cls


def voc(root: Path, n: int = 10) -> Path:
    """The canonical Pascal VOC tree: Annotations/, JPEGImages/, ImageSets/Main/{train,val,test}.txt."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, (x0, y0, x1, y1), cls = picture(i)
        Image.fromarray(img).save(root / "JPEGImages" / f"{i:03d}.png")
        (root / "Annotations" / f"{i:03d}.xml").write_text(
            f"<annotation><filename>{i:03d}.png</filename><size><width>{SIDE}</width><height>{SIDE}</height>"
            f"<depth>3</depth></size><object><name>{'red' if cls == 0 else 'blue'}</name><bndbox>"
            f"<xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object></annotation>")
    stems = [f"{i:03d}" for i in range(n)]
    for split, part in (("train", stems[:6]), ("val", stems[6:8]), ("test", stems[8:])):
        (root / "ImageSets/Main" / f"{split}.txt").write_text("\n".join(part) + "\n")
    return root


def masks(root: Path, n: int = 10) -> Path:
    """images/ + masks/ (index PNGs, 0 background, 1 shape) + classes.txt."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("background\nshape\n")
    for i in range(n):
        img, (x0, y0, x1, y1), _ = picture(i)
        Image.fromarray(img).save(root / "images" / f"{i:03d}.png")
        mask = np.zeros((SIDE, SIDE), np.uint8)
        mask[y0:y1, x0:x1] = 1
        Image.fromarray(mask).save(root / "masks" / f"{i:03d}.png")
    return root


def captions(root: Path, n: int = 10) -> Path:
    """Flickr8k's Kaggle layout: Images/ + captions.txt (image,caption)."""
    (root / "Images").mkdir(parents=True)
    rows = ["image,caption"]
    for i in range(n):
        img, _, cls = picture(i)
        Image.fromarray(img).save(root / "Images" / f"{i:03d}.jpg", quality=95)
        rows += [f"{i:03d}.jpg,a {'red' if cls == 0 else 'blue'} box on grey",
                 f"{i:03d}.jpg,a grey picture with a {'red' if cls == 0 else 'blue'} box"]
    (root / "captions.txt").write_text("\n".join(rows) + "\n")
    return root


def classes(root: Path, n: int = 12) -> Path:
    """Class folders: red/ and blue/."""
    for i in range(n):
        img, _, cls = picture(i)
        folder = root / ("red" if cls == 0 else "blue")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    return root


LAYOUTS = {"detect": voc, "segment": masks, "caption": captions, "classify": classes}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("layouts")
    return {task: make(base / task) for task, make in LAYOUTS.items()}


@pytest.fixture(scope="module")
def checkpoints(datasets, tmp_path_factory) -> dict[str, Path]:
    """One tiny model per task, each trained one epoch on its layout with no --task given."""
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for task, data in datasets.items():
        run = cnnlab.train(data=str(data), out=str(base / task), **QUIET, **TINY[task])
        assert run.task.name == task  # the layout decided
        out[task] = Path(run.out) / "best.pt"
    return out


# ----------------------------------------------------------------------------- the task from the layout
@pytest.mark.parametrize("task", list(LAYOUTS))
def test_each_layout_is_read_for_its_own_task(datasets, task):
    found = find_task(datasets[task])
    assert found is not None and found.task == task and found.on_disk
    assert str(datasets[task]) in found.line() and found.line().startswith(f"{task}: ")


def test_builtin_names_keep_their_task():
    assert resolve_task("digits", "auto").task == "classify"
    assert resolve_task("shapes", "auto").task == "classify"
    assert resolve_task("shapes", "segment").task == "segment"  # the built-in's other variants stay reachable


@pytest.mark.slow
def test_train_without_task_reads_the_layout_and_says_so(datasets, checkpoints, tmp_path, capsys):
    for task, ckpt in checkpoints.items():
        saved = json.loads((ckpt.parent / "config.json").read_text())
        assert saved["task"] == task  # the checkpoint records the task read, never "auto"
    code = cli.main(["train", "--data", str(datasets["detect"]), "--epochs", "1", "--workers", "0", "--no-plots",
                     "--batch-size", "4", "--model", "lecture_cnn",
                     "--model-args", "{widths: [8, 16, 16], anchor_sizes: [8, 16]}",
                     "--out", str(tmp_path / "det")])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0].startswith("detect: ") and str(datasets["detect"]) in out.splitlines()[0]


@pytest.mark.parametrize("given", list(LAYOUTS))
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_task_that_contradicts_the_layout_is_refused_with_the_fix(datasets, given, layout):
    if given == layout:
        assert resolve_task(datasets[layout], given).task == layout
        return
    with pytest.raises(CnnlabError, match=f"use --task {layout}"):
        cnnlab.train(data=str(datasets[layout]), task=given, **QUIET)


@pytest.mark.parametrize("folder", ["Annotations", "JPEGImages", "ImageSets", "labels", "masks",
                                    "SegmentationClass"])
def test_a_class_tree_with_another_layouts_folder_is_refused(tmp_path, folder):
    root = classes(tmp_path / "data")
    (root / folder).mkdir()
    Image.fromarray(picture(0)[0]).save(root / folder / "x.png")
    with pytest.raises(CnnlabError, match=f"{folder}: a .* folder, not a class"):
        cnnlab.load_dataset(str(root), "train")


def test_an_empty_class_folder_is_refused(tmp_path):
    root = classes(tmp_path / "data")
    (root / "green").mkdir()
    with pytest.raises(CnnlabError, match="green: an empty class folder"):
        cnnlab.train(data=str(root), **QUIET)


def test_the_bccd_folder_without_task_is_detection():
    bccd = Path(__file__).resolve().parents[2] / "shared" / "data" / "bccd"
    if not bccd.is_dir():
        pytest.skip(f"{bccd} is absent (the shared BCCD data)")
    found = find_task(bccd)
    assert found.task == "detect" and "VOC" in found.layout


# ----------------------------------------------------------------------------- eval and predict across tasks
@pytest.mark.slow
@pytest.mark.parametrize("model_task", list(LAYOUTS))
def test_eval_on_another_tasks_dataset_is_refused_for_every_pair(datasets, checkpoints, model_task, tmp_path):
    for data_task, data in datasets.items():
        if data_task == model_task:
            split = "test" if data_task in ("detect", "classify") else "val"
            metrics = cnnlab.evaluate(checkpoints[model_task], data=str(data), split=split)
            assert metrics["count"] > 0
            continue
        with pytest.raises(CnnlabError, match=f"is a .* dataset .*{model_task[:4]}"):
            cnnlab.evaluate(checkpoints[model_task], data=str(data), split="val")
        code = cli.main(["eval", str(checkpoints[model_task]), "--data", str(data), "--split", "val", "--no-plots"])
        assert code == 2


@pytest.mark.slow
def test_predict_on_a_dataset_folder_of_another_task_is_refused(datasets, checkpoints, capsys):
    code = cli.main(["predict", str(checkpoints["classify"]), str(datasets["segment"])])
    assert code == 2 and "segment dataset" in capsys.readouterr().err
    code = cli.main(["predict", str(checkpoints["segment"]), str(datasets["segment"])])  # masks are no photos
    assert code == 2 and "give its image folder" in capsys.readouterr().err
    code = cli.main(["predict", str(checkpoints["segment"]), str(datasets["segment"] / "images"), "--json"])
    assert code == 0 and len(json.loads(capsys.readouterr().out)) == 10


# ----------------------------------------------------------------------------- data check
def test_data_check_is_clean_on_a_clean_set_with_exit_0(datasets, capsys):
    code = cli.main(["data", "check", str(datasets["detect"])])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[0].startswith("detect: Pascal VOC")
    assert "train: 6 images, 6 boxes, 2 classes" in out and "test: 2 images" in out and "verdict: clean" in out


def test_data_check_finds_a_test_image_that_is_also_a_training_image(datasets, tmp_path, capsys):
    import shutil

    root = shutil.copytree(datasets["detect"], tmp_path / "leak")
    shutil.copy(root / "JPEGImages" / "000.png", root / "JPEGImages" / "008.png")  # test 008 = train 000
    code = cli.main(["data", "check", str(root), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["status"] == "warnings"
    assert any("1 image(s) of test are also in train" in w and "000.png = " in w and "008.png" in w
               for w in report["warnings"])


def test_data_check_reports_empty_classes_and_unreadable_splits(datasets, tmp_path, capsys):
    import shutil

    root = shutil.copytree(datasets["segment"], tmp_path / "seg")
    for i in range(10):
        Image.fromarray(np.zeros((SIDE, SIDE), np.uint8)).save(root / "masks" / f"{i:03d}.png")  # no "shape" left
    code = cli.main(["data", "check", str(root)])
    out = capsys.readouterr().out
    assert code == 1 and "class(es) with nothing in this split: shape" in out
    (root / "masks" / "003.png").write_bytes(b"not a png")
    code = cli.main(["data", "check", str(root)])
    out = capsys.readouterr().out
    assert code == 2 and "errors (" in out and "003.png" in out


# ----------------------------------------------------------------------------- captions scored on any captions set
@pytest.mark.slow
def test_a_captioner_is_scored_on_another_captions_set_with_its_unknown_words_counted(checkpoints, tmp_path, capsys):
    other = tmp_path / "other"
    (other / "Images").mkdir(parents=True)
    rows = ["image,caption"]
    for i in range(6):
        Image.fromarray(picture(i)[0]).save(other / "Images" / f"p{i}.jpg", quality=95)
        rows += [f"p{i}.jpg,a box on a grey zebra", f"p{i}.jpg,a grey picture"]
    (other / "captions.txt").write_text("\n".join(rows) + "\n")
    m = cnnlab.evaluate(checkpoints["caption"], data=str(other), split="val")  # before: "its classes ... differ"
    assert m["count"] > 0 and 0 <= m["bleu4"] <= 1
    assert m["unknown_reference_words"] == m["count"]  # "zebra": once per image; every other word is known
    assert m["reference_words"] == 9 * m["count"]
    code = cli.main(["eval", str(checkpoints["caption"]), "--data", str(other), "--split", "val", "--no-plots"])
    assert code == 0 and "are outside the model's vocabulary" in capsys.readouterr().out
