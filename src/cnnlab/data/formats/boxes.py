"""Detection datasets on disk, in the layouts users bring: which layout a path holds, and its splits.

    load_dataset("VOCdevkit/VOC2012", "val", task="detect")      # Pascal VOC, any arrangement (voc.py)
    load_dataset("data/annotations/instances_train.json", "train", task="detect")  # COCO (coco.py)
    load_dataset("coco:annotations/instances_train2017.json", "train", task="detect",
                 images="coco/train2017")                         # COCO, images in another folder
    load_dataset("my_yolo_set", "train", task="detect")          # images/ + labels/ (yolo.py)
    load_dataset("coco8.yaml", "val", task="detect")             # an Ultralytics dataset YAML (yolo.py)
    load_dataset("tf_tutorial", "test", task="detect")           # train_labels.csv, test_labels.csv (box_csv.py)
    detection_layout(Path("my_roboflow_export"))                 # "COCO JSON (train/_annotations.coco.json)"

``coco:``, ``voc:``, ``yolo:`` or ``csv:`` before the path forces a reader; else a ``.json`` file is
COCO, a ``.yaml`` Ultralytics, a ``.csv`` a box table, and a folder is sniffed by
``detection_layout`` (names only, at most one small file read). Splits are the data's own, or
carved by seed and stratified by class (``box_splits``): train/val/test for a set without any.
Every reader's records then have their size read from the image (pixels win over metadata,
``box_images``) and go through ``check_annotations`` (``detection``); images are resized to
``image_size`` (square) or, by default, kept when all share one size, else 320x320.
"""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

from cnnlab.data.detection import DetectionImages, check_annotations, to_detection_images
from cnnlab.data.formats.box_csv import csv_tables, is_box_header, read_csv_part
from cnnlab.data.formats.box_images import use_image_sizes
from cnnlab.data.formats.box_splits import SPLIT_WORDS, carve
from cnnlab.data.formats.coco import ROBOFLOW_NAME, coco_file, read_coco_part
from cnnlab.data.formats.voc import voc_arrangement, read_voc_part
from cnnlab.data.formats.yolo import YAML_SUFFIXES, folder_yaml, read_yaml, read_yolo_part
from cnnlab.data.layout import register_layout
from cnnlab.data.registry import register_path_loader
from cnnlab.errors import CnnlabError

DEFAULT_SIZE = 320  # pixels: the side mixed-size images are resized to when image_size is not set
FORMATS = ("coco", "voc", "yolo", "csv")
SNIFF_BYTES = 1 << 16  # bytes read from each end of a .json to tell COCO instances from other JSON
LAYOUTS = ("a COCO *.json file (or a Roboflow COCO export), Pascal VOC XML (Annotations/ + JPEGImages/, "
           "images/ + annotations/, or each .xml beside its image), a YOLO folder (images/, labels/), an "
           "Ultralytics dataset *.yaml (path, train, val, names) or a box CSV (filename,class,xmin,ymin,xmax,ymax)")


@register_path_loader("detect", formats=FORMATS)
def load_detection_path(path: Path, split: str, seed: int = 0, *, skip_bad: bool = False,
                        val_fraction: float = 0.1, test_fraction: float | None = None, image_size: int = 0,
                        out_of_image: str = "clip", images: Path | None = None, format: str = "",
                        **opts) -> DetectionImages:
    """Split ``split`` of the detection dataset at ``path`` (COCO, VOC, YOLO, Ultralytics YAML, box CSV).

    images: the folder of a COCO file's images; format: one of FORMATS (else read from the path);
    test_fraction: of a set without splits, carved as test (default: val_fraction).
    """
    opts.pop("download", None)
    if opts:
        raise CnnlabError(f"--data {path}: detection data takes no option {', '.join(sorted(opts))}")
    path = Path(path)
    kind = format or _kind(path)
    if images is not None and kind != "coco":
        raise CnnlabError(f"--images {images}: is for a COCO annotation file; --data {path} is a {kind} "
                          f"dataset, whose layout says where its images are")
    if kind == "coco":
        file = coco_file(path)
        if file is None:
            raise CnnlabError(f"--data coco:{path}: expected a COCO annotation file (*.json with images, "
                              f"annotations, categories) or a folder holding one")
        part = read_coco_part(file, split, images)
    elif kind == "voc":
        part = read_voc_part(path, split)
    elif kind == "yolo":
        part = read_yolo_part(path, split, skip_bad)
    elif kind == "csv":
        part = read_csv_part(path, split)
    else:
        raise CnnlabError(f"--data {kind}:{path}: unknown format {kind!r}; expected one of {', '.join(FORMATS)}")
    records = carve(part.records, split, part.carve, part.ids, seed, val_fraction, test_fraction)
    if not records:
        raise CnnlabError(f"--data {path}: no images in split {split!r}")
    where = f"{path} ({split})"
    notes = list(part.notes) + ([] if kind == "yolo" else use_image_sizes(records, where, skip_bad))
    for line in notes:
        warnings.warn(line, stacklevel=2)
    targets, report = check_annotations(records, part.ids, where, out_of_image)
    sizes = Counter((r.height, r.width) for r in records)
    size = (image_size, image_size) if image_size else (
        next(iter(sizes)) if len(sizes) == 1 else (DEFAULT_SIZE, DEFAULT_SIZE))
    return to_detection_images(records, targets, part.classes, size, name=f"{path.name}/{split}",
                               report=notes + report, skip_bad=skip_bad)


def _kind(path: Path) -> str:
    """The reader for ``path``: a file by its suffix, a folder by its layout."""
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".json", ".csv") or suffix in YAML_SUFFIXES:
            return {".json": "coco", ".csv": "csv"}.get(suffix, "yolo")
    found = sniff(path)
    if found is None:
        raise CnnlabError(f"--data {path}: no detection layout found; expected {LAYOUTS}")
    return found[0]


# ---------------------------------------------------------------------------------------
# sniffing: which layout a path holds, from names and at most one small file
# ---------------------------------------------------------------------------------------


@register_layout("detect")
def detection_layout(path: Path) -> str | None:
    """A short description of the detection layout at ``path``, or None when it holds none.

    Cheap (names, and at most one small file or both ends of one JSON read) and never raises."""
    try:
        found = sniff(Path(path))
    except (OSError, ValueError, CnnlabError):
        return None
    return found[1] if found else None


def sniff(path: Path) -> tuple[str, str] | None:
    """(reader, description) of the detection layout at ``path``, or None."""
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".json" and _is_coco_json(path):
            return "coco", f"COCO JSON ({path.name})"
        if suffix in YAML_SUFFIXES and _is_dataset_yaml(path):
            return "yolo", f"Ultralytics YAML ({path.name})"
        if suffix == ".csv" and _is_box_csv(path):
            return "csv", f"box CSV ({path.name})"
        return None
    if not path.is_dir():
        return None
    if folder_yaml(path) is not None:
        return "yolo", f"Ultralytics YAML ({folder_yaml(path).name})"
    file = coco_file(path)
    if file is not None and (file.name == ROBOFLOW_NAME or file.name.startswith("instances_")):
        return "coco", f"COCO JSON ({file.relative_to(path).as_posix()})"
    arrangement = voc_arrangement(path)
    if arrangement is not None:
        return "voc", arrangement.description
    if (path / "images").is_dir() and _holds_labels(path / "labels"):
        return "yolo", "YOLO (images/ + labels/)"
    tables = csv_tables(path)
    table = next(iter(tables.values()), None)
    if table is not None and _is_box_csv(table):
        return "csv", f"box CSV ({', '.join(t.name for t in tables.values())})"
    return None


def _is_coco_json(path: Path) -> bool:
    """A COCO instances file names "bbox" or "categories" near one of its ends (captions JSON does not)."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
        f.seek(max(0, path.stat().st_size - SNIFF_BYTES))
        tail = f.read(SNIFF_BYTES)
    return any(key in chunk for key in (b'"bbox"', b'"categories"') for chunk in (head, tail))


def _is_dataset_yaml(path: Path) -> bool:
    doc = read_yaml(path)
    return isinstance(doc, dict) and bool(doc.get("train")) and ("names" in doc or "nc" in doc)


def _is_box_csv(path: Path) -> bool:
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        return is_box_header(f.readline(SNIFF_BYTES))


def _holds_labels(folder: Path) -> bool:
    """``labels/`` of a YOLO set: .txt files in it or in its split folders (not PNG masks)."""
    subs = [folder] + [folder / w for words in SPLIT_WORDS.values() for w in words]
    return any(sub.is_dir() and next(sub.glob("*.txt"), None) is not None for sub in subs)
