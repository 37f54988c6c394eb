"""Detection datasets on disk: COCO JSON, Pascal VOC XML and YOLO txt, read into one format.

    load_dataset("data/annotations/instances_train.json", "train", task="detect")  # COCO
    load_dataset("VOCdevkit/VOC2012", "val", task="detect")      # Annotations/*.xml + JPEGImages/
    load_dataset("my_yolo_set", "train", task="detect")          # images/ + labels/*.txt + classes.txt

Layouts recognised:

* **COCO**: a ``*.json`` file with ``images``, ``annotations`` (``bbox`` = x, y, width, height)
  and ``categories``; image files are looked up beside the JSON, in ``images/`` beside it and in
  ``../images/``. The val/test split is the same file name with ``train`` replaced by ``val``/``test``.
* **VOC**: a folder with ``Annotations/*.xml`` and ``JPEGImages/``; ``ImageSets/Main/<split>.txt``
  picks the split; classes are the ``<name>`` values found (or ``classes.txt``, one per line).
* **YOLO**: a folder with ``images/`` and ``labels/`` (optionally ``images/<split>/``); one
  ``class cx cy w h`` line per box, normalised to 0..1; classes from ``classes.txt`` (or ``names``
  in ``data.yaml``).

Where the data has no val split, ``val_fraction`` of train is carved off (by seed). Every
reader's records go through ``check_annotations`` (see ``cnnlab.data.detection``); images are
resized to ``image_size`` (square) or, by default, kept when all share one size, else 320x320.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import torch

from cnnlab.data.detection import Annotated, DetectionImages, check_annotations, to_detection_images
from cnnlab.data.registry import register_path_loader
from cnnlab.errors import CnnlabError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_SIZE = 320  # pixels: the side mixed-size images are resized to when image_size is not set


@register_path_loader("detect")
def load_detection_path(path: Path, split: str, seed: int = 0, *, skip_bad: bool = False,
                        val_fraction: float = 0.1, image_size: int = 0, out_of_image: str = "clip",
                        **opts) -> DetectionImages:
    """Split ``split`` of the detection dataset at ``path`` (COCO file, VOC or YOLO folder)."""
    opts.pop("download", None)
    if opts:
        raise CnnlabError(f"--data {path}: detection data takes no option {', '.join(sorted(opts))}")
    path = Path(path)
    if path.is_file() and path.suffix == ".json":
        records, classes, ids, carve = _coco(path, split)
    elif (path / "Annotations").is_dir():
        records, classes, ids, carve = _voc(path, split)
    elif (path / "labels").is_dir() and (path / "images").is_dir():
        records, classes, ids, carve = _yolo(path, split)
    else:
        raise CnnlabError(f"--data {path}: expected a COCO *.json file, a VOC folder (Annotations/, "
                          f"JPEGImages/) or a YOLO folder (images/, labels/)")
    if carve:
        records = _carve(records, split, seed, val_fraction, path)
    if not records:
        raise CnnlabError(f"--data {path}: no images in split {split!r}")
    targets, report = check_annotations(records, ids, f"{path} ({split})", out_of_image)
    sizes = Counter((r.height, r.width) for r in records)
    size = (image_size, image_size) if image_size else (
        next(iter(sizes)) if len(sizes) == 1 else (DEFAULT_SIZE, DEFAULT_SIZE))
    return to_detection_images(records, targets, classes, size, name=f"{path.name}/{split}",
                               report=report, skip_bad=skip_bad)


def _carve(records: list[Annotated], split: str, seed: int, val_fraction: float, path: Path) -> list[Annotated]:
    """train/val from one list: ``val_fraction`` of it (a seeded permutation) is val."""
    if split == "test":
        raise CnnlabError(f"--data {path}: has no test split")
    order = torch.randperm(len(records), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = min(len(records) - 1, max(1, round(val_fraction * len(records)))) if val_fraction > 0 else 0
    pick = order[:n_val] if split == "val" else order[n_val:]
    return [records[i] for i in sorted(pick)]


# ---------------------------------------------------------------------------------------
# COCO
# ---------------------------------------------------------------------------------------


def _coco(path: Path, split: str) -> tuple[list[Annotated], list[str], dict, bool]:
    val = path.with_name(path.name.replace("train", "val"))
    carve = val == path or not val.is_file()  # no val file: carve val from this one
    if split != "train":
        other = path.with_name(path.name.replace("train", split))
        carve = other == path or not other.is_file()  # test without its own file: no test split
        if not carve:
            path = other
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CnnlabError(f"{path}: not a readable COCO JSON file ({e.__class__.__name__})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise CnnlabError(f"{path}: field {key!r} missing; expected a COCO instances file")
    cats = sorted(doc["categories"], key=lambda c: c["id"])
    ids = {c["id"]: i + 1 for i, c in enumerate(cats)}  # category id -> label 1..K
    records, by_id = [], {}
    for im in doc["images"]:
        try:
            r = Annotated(str(_find_image(path, im["file_name"])), int(im["width"]), int(im["height"]),
                          [], [], image_id=im["id"])
        except KeyError as e:
            raise CnnlabError(f"{path}: an image entry lacks field {e.args[0]!r}") from None
        if im["id"] not in by_id:
            by_id[im["id"]] = r
        records.append(r)
    orphans = 0
    for a in doc["annotations"]:
        r = by_id.get(a.get("image_id"))
        if r is None:
            orphans += 1
            continue
        if a.get("iscrowd", 0):
            continue  # crowd regions are ignored by COCOeval too
        x, y, w, h = a["bbox"]
        r.boxes.append([x, y, x + w, y + h])
        r.categories.append(a["category_id"])
    if orphans:
        raise CnnlabError(f"{path}: {orphans} annotations name an image_id that has no image entry")
    return records, [c["name"] for c in cats], ids, carve


def _find_image(json_path: Path, name: str) -> Path:
    root = json_path.parent
    for folder in (root, root / "images", root.parent / "images", root.parent):
        if (folder / name).is_file():
            return folder / name
    raise CnnlabError(f"{json_path}: image file {name!r} not found beside the JSON, in images/ or ../images/")


# ---------------------------------------------------------------------------------------
# Pascal VOC
# ---------------------------------------------------------------------------------------


def _voc(root: Path, split: str) -> tuple[list[Annotated], list[str], dict, bool]:
    listing = root / "ImageSets" / "Main" / f"{split}.txt"
    xmls = sorted((root / "Annotations").glob("*.xml"))
    carve = not listing.is_file()
    if not carve:
        wanted = set(listing.read_text().split())
        xmls = [x for x in xmls if x.stem in wanted]
    records = [_voc_record(x, root) for x in xmls]
    if (root / "classes.txt").is_file():
        classes = (root / "classes.txt").read_text().split()
    else:
        classes = sorted({n for x in (root / "Annotations").glob("*.xml") for n in _voc_names(x)})
    return records, classes, {c: i + 1 for i, c in enumerate(classes)}, carve


def _voc_names(xml: Path) -> list[str]:
    return [o.findtext("name", "").strip() for o in _parse(xml).iter("object")]


def _parse(xml: Path) -> ET.Element:
    try:
        return ET.parse(xml).getroot()
    except ET.ParseError as e:
        raise CnnlabError(f"{xml}: not valid XML ({e})") from None


def _voc_record(xml: Path, root: Path) -> Annotated:
    doc = _parse(xml)
    name = doc.findtext("filename") or xml.stem + ".jpg"
    image = root / "JPEGImages" / name
    try:
        size = doc.find("size")
        w, h = int(size.findtext("width")), int(size.findtext("height"))
        boxes, names = [], []
        for o in doc.iter("object"):
            b = o.find("bndbox")
            # VOC pixels are 1-based and inclusive: (xmin - 1, ymin - 1, xmax, ymax) in 0-based edges
            boxes.append([float(b.findtext("xmin")) - 1, float(b.findtext("ymin")) - 1,
                          float(b.findtext("xmax")), float(b.findtext("ymax"))])
            names.append(o.findtext("name", "").strip())
    except (AttributeError, TypeError, ValueError):
        raise CnnlabError(f"{xml}: expected <size> with width/height and <bndbox> with numeric "
                          f"xmin/ymin/xmax/ymax in every <object>") from None
    return Annotated(str(image), w, h, boxes, names, image_id=xml.stem)


# ---------------------------------------------------------------------------------------
# YOLO
# ---------------------------------------------------------------------------------------


def _yolo(root: Path, split: str) -> tuple[list[Annotated], list[str], dict, bool]:
    from cnnlab.images import peek_image

    classes = _yolo_classes(root)
    images_dir, labels_dir = root / "images", root / "labels"
    carve = not (images_dir / "train").is_dir()
    if not carve:
        images_dir, labels_dir = images_dir / split, labels_dir / split
        if not images_dir.is_dir():
            raise CnnlabError(f"--data {root}: has no {split} split (images/{split}/)")
    records = []
    for image in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        _, h, w = peek_image(image)
        label = labels_dir / f"{image.stem}.txt"
        boxes, cats = [], []
        if label.is_file():
            for n, line in enumerate(label.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    c, cx, cy, bw, bh = line.split()[:5]
                    c, cx, cy, bw, bh = int(c), float(cx) * w, float(cy) * h, float(bw) * w, float(bh) * h
                except ValueError:
                    raise CnnlabError(f"{label}:{n}: expected 'class cx cy w h' (integer, four numbers 0..1)") from None
                boxes.append([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
                cats.append(c)
        records.append(Annotated(str(image), w, h, boxes, cats, image_id=image.stem))
    return records, classes, {i: i + 1 for i in range(len(classes))}, carve


def _yolo_classes(root: Path) -> list[str]:
    if (root / "classes.txt").is_file():
        return [line.strip() for line in (root / "classes.txt").read_text().splitlines() if line.strip()]
    if (root / "data.yaml").is_file():
        import yaml

        names = (yaml.safe_load((root / "data.yaml").read_text()) or {}).get("names")
        if isinstance(names, dict):
            return [names[k] for k in sorted(names)]
        if isinstance(names, list):
            return [str(n) for n in names]
    raise CnnlabError(f"--data {root}: a YOLO folder needs classes.txt (one name per line) or data.yaml with names")
