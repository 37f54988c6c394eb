"""The dataset layouts users come from: Ultralytics YOLO YAML, COCO JSON with --images, and
segmentation masks as index PNGs, palette PNGs and (lossy) JPEGs.

Each layout is built small in tmp_path, trained for one step, and broken in the ways users
break it; every error is one CnnlabError naming the file and the layout expected.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnnlab
from cnnlab import cli
from cnnlab.data import load_dataset
from cnnlab.errors import CnnlabError

QUIET = dict(epochs=1, workers=0, plots=False, log=lambda *a: None)
DETECTOR = dict(task="detect", model="lecture_cnn", batch_size=8, lr=0.01, model_args={"widths": [8, 16, 16], "anchor_sizes": [8, 16]})
SIDE = 32  # pixels: every test image is SIDE x SIDE


# ----------------------------------------------------------------------------- tiny scenes
def scene(i: int) -> tuple[Image.Image, list[float], int]:
    """A grey image with one rectangle (class 0 red, class 1 blue); its box (x0, y0, x1, y1) and class."""
    cls, x0, y0 = i % 2, 2 + 3 * (i % 4), 4 + 2 * (i % 3)
    img = np.full((SIDE, SIDE, 3), 120, np.uint8)
    img[y0:y0 + 12, x0:x0 + 14] = (220, 30, 30) if cls == 0 else (30, 30, 220)
    return Image.fromarray(img), [x0, y0, x0 + 14, y0 + 12], cls


def yolo_line(box: list[float], cls: int) -> str:
    x0, y0, x1, y1 = box
    return f"{cls} {(x0 + x1) / 2 / SIDE} {(y0 + y1) / 2 / SIDE} {(x1 - x0) / SIDE} {(y1 - y0) / SIDE}"


def write_ultralytics(root: Path, splits: dict[str, int], names="{0: cat, 1: dog}", path_line: str = "") -> Path:
    """images/<split>2017/*.png + labels/<split>2017/*.txt under ``root``; the YAML in ``root/cfg``."""
    for split, n in splits.items():
        for sub in ("images", "labels"):
            (root / sub / f"{split}2017").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, box, cls = scene(i)
            img.save(root / "images" / f"{split}2017" / f"{split}{i}.png")
            (root / "labels" / f"{split}2017" / f"{split}{i}.txt").write_text(yolo_line(box, cls) + "\n")
    yaml = root / "cfg" / "my.yaml"
    yaml.parent.mkdir(exist_ok=True)
    entries = "".join(f"{s}: images/{s}2017\n" for s in splits)
    yaml.write_text(f"{path_line or 'path: ..'}\n{entries}names: {names}\n")
    return yaml


def write_coco(ann_dir: Path, image_dir: Path, split: str, n: int) -> Path:
    """annotations/instances_<split>2017.json with its images in ``image_dir/<split>2017``."""
    folder = image_dir / f"{split}2017"
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    for i in range(n):
        img, (x0, y0, x1, y1), cls = scene(i)
        img.save(folder / f"{i:012d}.jpg", quality=95)
        doc["images"].append({"id": i, "file_name": f"{i:012d}.jpg", "width": SIDE, "height": SIDE})
        doc["annotations"].append({"id": i, "image_id": i, "category_id": cls + 1, "bbox": [x0, y0, x1 - x0, y1 - y0]})
    ann_dir.mkdir(parents=True, exist_ok=True)
    path = ann_dir / f"instances_{split}2017.json"
    path.write_text(json.dumps(doc))
    return path


# ----------------------------------------------------------------------------- Ultralytics YAML
def test_ultralytics_yaml_trains_evaluates_predicts_and_shows_info(tmp_path, capsys):
    yaml = write_ultralytics(tmp_path / "ds", {"train": 8, "val": 4})
    train = load_dataset(yaml, "train", task="detect")
    assert train.classes == ["cat", "dog"] and len(train) == 8 and train.image_shape == (3, SIDE, SIDE)
    _, box, cls = scene(3)
    assert train.targets[3]["boxes"].tolist() == [box] and train.targets[3]["labels"].tolist() == [cls + 1]
    assert len(load_dataset(yaml, "val", task="detect")) == 4

    run = cnnlab.train(data=str(yaml), out=str(tmp_path / "run"), **DETECTOR, **QUIET)
    best = tmp_path / "run" / "best.pt"
    assert run.best and cnnlab.load(best).task.classes == ["cat", "dog"]
    assert cli.main(["eval", str(best), "--data", str(yaml), "--split", "val", "--json", "--no-plots"]) == 0
    assert "map" in json.loads(capsys.readouterr().out)
    [p] = cnnlab.predict(best, [str(tmp_path / "ds" / "images" / "val2017" / "val0.png")], score_threshold=0.0)
    assert all(d["class"] in ("cat", "dog") for d in p["detections"])
    grid = tmp_path / "grid.png"
    assert cli.main(["data", "info", str(yaml), "--task", "detect", "--json", "--grid", str(grid)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["classes"] == ["cat", "dog"] and info["count"] == 8 and grid.exists()


def test_ultralytics_yaml_without_val_lists_and_folder_forms(tmp_path):
    root = tmp_path / "ds"
    write_ultralytics(root, {"train": 10}, names="[cat, dog]")
    (root / "train.txt").write_text("".join(f"./images/train2017/train{i}.png\n" for i in range(10)))
    (root / "list.yaml").write_text("train: train.txt\nnc: 2\n")  # no path, no val, no names: nc alone
    train, val = (load_dataset(root / "list.yaml", s, task="detect", val_fraction=0.2) for s in ("train", "val"))
    assert (len(train), len(val)) == (8, 2) and not set(train.files) & set(val.files)
    assert train.classes == ["class_0", "class_1"]
    with pytest.raises(CnnlabError, match=r"list\.yaml: has no test split"):
        load_dataset(root / "list.yaml", "test", task="detect")
    # an exported folder: data.yaml naming its splits with Roboflow's ../ paths
    (root / "data.yaml").write_text("train: ../images/train2017\nnames: [cat, dog]\n")
    assert len(load_dataset(root, "train", task="detect", val_fraction=0.0)) == 10
    assert len(load_dataset(f"yolo:{root / 'data.yaml'}", "train", task="detect", val_fraction=0.0)) == 10


@pytest.mark.parametrize("broken, message", [
    ("names", r"my\.yaml: no class names; expected names: \[cat, dog\]"),
    ("train", r"my\.yaml: no train entry; expected train: images/train"),
    ("labels", r"none of the 4 images in .*train2017 has a label file \(no folder .*labels/train2017\).*images/ swapped"),
    ("class", r"unknown category ids 7 in 1 files: .*train1\.png \(.*train1\.txt:1\); class indices must be 0\.\.1"),
    ("folder", r"my\.yaml: train: .*images/nothere not found; expected a folder of images"),
    ("keys", r"my\.yaml: names keys must be the class indices 0\.\.1"),
    ("pixels", r"train0\.txt:1: coordinates .* are not normalised to 0\.\.1"),
])
def test_ultralytics_yaml_errors_name_the_file_and_the_layout(tmp_path, broken, message):
    yaml = write_ultralytics(tmp_path / "ds", {"train": 4})
    labels = tmp_path / "ds" / "labels" / "train2017"
    text = yaml.read_text()
    if broken == "names":
        yaml.write_text(text.replace("names: {0: cat, 1: dog}", ""))
    elif broken == "train":
        yaml.write_text(text.replace("train: images/train2017", "val: images/train2017"))
    elif broken == "labels":
        for f in labels.iterdir():
            f.unlink()
        labels.rmdir()
    elif broken == "class":
        (labels / "train1.txt").write_text("7 0.5 0.5 0.2 0.2\n")
    elif broken == "folder":
        yaml.write_text(text.replace("images/train2017", "images/nothere"))
    elif broken == "keys":
        yaml.write_text(text.replace("{0: cat, 1: dog}", "{1: cat, 2: dog}"))
    elif broken == "pixels":
        (labels / "train0.txt").write_text("0 16 16 14 12\n")
    with pytest.raises(CnnlabError, match=message):
        load_dataset(yaml, "train", task="detect")


# ----------------------------------------------------------------------------- COCO + --images
def test_coco_json_with_images_elsewhere_trains_through_the_cli(tmp_path, capsys):
    ann = tmp_path / "coco" / "annotations"
    train_json = write_coco(ann, tmp_path / "pictures", "train", 8)
    val_json = write_coco(ann, tmp_path / "pictures", "val", 4)
    images = tmp_path / "pictures" / "train2017"
    with pytest.raises(CnnlabError, match=r"instances_train2017\.json: 8 of 8 image files not found .*--images DIR"):
        load_dataset(train_json, "train", task="detect")
    val = load_dataset(f"coco:{train_json}", "val", task="detect", images=str(images))  # val2017 beside train2017
    assert len(val) == 4 and all("val2017" in f for f in val.files)

    out = tmp_path / "run"
    assert cli.main(["train", "--task", "detect", "--model", "lecture_cnn", "--data", f"coco:{train_json}",
                     "--images", str(images), "--epochs", "1", "--batch-size", "8", "--workers", "0", "--no-plots", "--quiet",
                     "--set", "model_args={widths: [8, 16, 16], anchor_sizes: [8, 16]}", "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["eval", str(out / "best.pt"), "--data", str(val_json), "--images",
                     str(tmp_path / "pictures" / "val2017"), "--split", "val", "--json", "--no-plots"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 4


@pytest.mark.parametrize("spec, opts, message", [
    ("coco:{ann}/instances_train2017.json", {"images": "{tmp}/nowhere"}, r"--images .*nowhere: no such folder"),
    ("coco:{ann}/instances_train2017.json", {"images": "{tmp}/pictures"},
     r"instances_train2017\.json: 3 of 3 image files not found in --images .*pictures: 000000000000\.jpg"),
    ("coco:{tmp}/pictures", {}, r"coco:.*pictures: expected a COCO annotation file"),
    ("coco:{ann}/gone.json", {}, r"--data coco:.*gone\.json: no such file or folder"),
    ("digits", {"images": "{tmp}/pictures"}, r"--images is for COCO-style annotations \(--task .*detect.*\); digits is a built-in"),
])
def test_coco_and_images_errors(tmp_path, spec, opts, message):
    ann = tmp_path / "annotations"
    write_coco(ann, tmp_path / "pictures", "train", 3)
    fill = {"ann": ann, "tmp": tmp_path}
    task = "classify" if spec == "digits" else "detect"
    with pytest.raises(CnnlabError, match=message):
        load_dataset(spec.format(**fill), "train", task=task, **{k: v.format(**fill) for k, v in opts.items()})


def test_images_is_refused_by_loaders_that_do_not_read_it(tmp_path):
    seg = write_masks(tmp_path / "roads", "png")
    with pytest.raises(CnnlabError, match=r"--images is for COCO-style annotations .*--task segment reads its images"):
        load_dataset(seg, "train", task="segment", images=str(tmp_path))
    yaml = write_ultralytics(tmp_path / "ds", {"train": 2})
    with pytest.raises(CnnlabError, match=r"--images .* is for a COCO annotation file; .*my\.yaml is a yolo dataset"):
        load_dataset(yaml, "train", task="detect", images=str(tmp_path))


# ----------------------------------------------------------------------------- segmentation masks
PALETTE = [(0, 0, 0), (200, 40, 40), (40, 40, 200)]  # background, road, car


def scene_mask(i: int, classes: int) -> tuple[Image.Image, np.ndarray]:
    """An image and its (H, W) class ids: a band of class 1, and a square of class 2 when 3 classes."""
    ids = np.zeros((SIDE, SIDE), np.uint8)
    ids[:, 4 + i % 4:18 + i % 4] = 1
    if classes == 3:
        ids[20:28, 20:28] = 2
    img = np.stack([np.asarray(PALETTE, np.uint8)[ids][..., c] // 2 + 60 for c in range(3)], -1)
    return Image.fromarray(img), ids


def write_masks(root: Path, kind: str, n: int = 8) -> Path:
    """images/ + masks/ + classes.txt with masks saved as ``kind``: png (ids), palette, jpeg-binary, jpeg-colour."""
    classes = 2 if kind == "jpeg-binary" else 3
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    names = ["background", "road", "car"][:classes]
    colours = kind == "jpeg-colour"
    (root / "classes.txt").write_text("".join(f"{n} {' '.join(map(str, PALETTE[i]))}\n" if colours else f"{n}\n"
                                              for i, n in enumerate(names)))
    for i in range(n):
        img, ids = scene_mask(i, classes)
        img.save(root / "images" / f"s{i}.png")
        if kind == "png":
            Image.fromarray(ids).save(root / "masks" / f"s{i}.png")
        elif kind == "palette":
            p = Image.fromarray(ids, mode="P")
            p.putpalette([v for c in PALETTE for v in c])
            p.save(root / "masks" / f"s{i}.png")
        elif kind == "jpeg-binary":
            Image.fromarray(ids * 255).save(root / "masks" / f"s{i}.jpg", quality=75)
        else:
            Image.fromarray(np.asarray(PALETTE, np.uint8)[ids]).save(root / "masks" / f"s{i}.jpg", quality=75)
    return root


@pytest.mark.parametrize("kind", ["png", "palette", "jpeg-binary", "jpeg-colour"])
@pytest.mark.filterwarnings("ignore:.*lossy \\(JPEG\\) masks")
def test_mask_files_as_users_have_them(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    root = write_masks(tmp_path / "roads", kind)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(root, "train", task="segment", val_fraction=0.0, test_fraction=0.0)
    lossy = [str(w.message) for w in caught if "lossy (JPEG) masks" in str(w.message)]
    classes = 2 if kind == "jpeg-binary" else 3
    expected = np.stack([scene_mask(i, classes)[1] for i in range(8)])
    agree = (data.masks.numpy() == expected).mean()
    if kind.startswith("jpeg"):
        assert len(lossy) == 1 and data.report == lossy and agree > 0.97  # edges may move a pixel
        assert int(lossy[0].split(":")[-1].split()[0].replace(",", "")) > 0  # "N pixels in 8 masks"
    else:
        assert not lossy and not data.report and agree == 1.0
    if kind == "jpeg-colour":  # one training step on the lossy masks
        run = cnnlab.train(task="segment", data=str(root), model="unet", model_args={"widths": [4, 8]},
                           batch_size=4, val_fraction=0.25, out=str(tmp_path / "run"), **QUIET)
        assert run.best


def test_jpeg_masks_without_colours_are_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    root = write_masks(tmp_path / "roads", "jpeg-colour", n=3)
    (root / "classes.txt").write_text("background\nroad\ncar\n")
    with pytest.raises(CnnlabError, match=r"s0\.jpg: a JPEG mask for 3 classes; .*save masks as PNG, or give each "
                                          r"class its colour"):
        load_dataset(root, "train", task="segment")
