"""Detection datasets on disk: COCO JSON, Pascal VOC XML, YOLO txt and Ultralytics dataset YAML.

    load_dataset("data/annotations/instances_train.json", "train", task="detect")  # COCO
    load_dataset("coco:annotations/instances_train2017.json", "train", task="detect",
                 images="coco/train2017")                         # COCO, images in another folder
    load_dataset("VOCdevkit/VOC2012", "val", task="detect")      # Annotations/*.xml + JPEGImages/
    load_dataset("my_yolo_set", "train", task="detect")          # images/ + labels/*.txt + classes.txt
    load_dataset("coco8.yaml", "val", task="detect")             # an Ultralytics dataset YAML

Layouts recognised (``coco:``, ``voc:`` or ``yolo:`` before the path forces one):

* **COCO**: a ``*.json`` file with ``images``, ``annotations`` (``bbox`` = x, y, width, height)
  and ``categories``. Image files are looked up in ``images`` (``--images DIR``) when given, else
  beside the JSON, in ``images/`` beside it, in ``../images/`` and in ``../<name>/`` for
  ``instances_<name>.json`` (COCO's ``annotations/`` + ``train2017/`` layout). Splits: a file
  named for one split (``train``/``val``/``test`` in its name) finds the others by swapping that
  word, in the file name and in the ``--images`` folder's name (``train2017`` -> ``val2017``).
* **VOC**: a folder with ``Annotations/*.xml`` and ``JPEGImages/``; ``ImageSets/Main/<split>.txt``
  picks the split; classes are the ``<name>`` values found (or ``classes.txt``, one per line).
* **YOLO folder**: ``images/`` and ``labels/`` (optionally ``images/<split>/``); one
  ``class cx cy w h`` line per box, normalised to 0..1 (or a polygon ``class x1 y1 x2 y2 ...``,
  boxed); classes from ``classes.txt`` (or ``names`` in ``data.yaml``). A folder whose
  ``data.yaml`` names a ``train`` split is read as that YAML.
* **Ultralytics YAML** (``*.yaml``): ``path`` (the root; relative to the YAML's folder, which it
  defaults to), ``train``/``val``/``test`` (image folders, ``.txt`` lists of images, or lists of
  either, relative to the root) and ``names`` (a list, or a mapping ``{0: name}``; ``nc`` alone
  gives ``class_0``...). Each image's labels are at its path with the last ``images`` folder
  swapped for ``labels`` and the suffix for ``.txt``; an image without a label file is a negative.

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
from cnnlab.data.registry import SPLITS, register_path_loader
from cnnlab.errors import CnnlabError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_SIZE = 320  # pixels: the side mixed-size images are resized to when image_size is not set
FORMATS = ("coco", "voc", "yolo")
YAML_SUFFIXES = (".yaml", ".yml")
MAX_YAML_BYTES = 1 << 20  # a dataset YAML is a page of text
LAYOUTS = ("a COCO *.json file, a VOC folder (Annotations/, JPEGImages/), a YOLO folder (images/, labels/) "
           "or an Ultralytics dataset *.yaml (path, train, val, names)")


@register_path_loader("detect", formats=FORMATS)
def load_detection_path(path: Path, split: str, seed: int = 0, *, skip_bad: bool = False,
                        val_fraction: float = 0.1, image_size: int = 0, out_of_image: str = "clip",
                        images: Path | None = None, format: str = "", **opts) -> DetectionImages:
    """Split ``split`` of the detection dataset at ``path`` (COCO file, VOC or YOLO folder, YOLO YAML).

    images: the folder of a COCO file's images; format: ``coco``, ``voc`` or ``yolo`` (else detected).
    """
    opts.pop("download", None)
    if opts:
        raise CnnlabError(f"--data {path}: detection data takes no option {', '.join(sorted(opts))}")
    path = Path(path)
    kind = format or _layout(path)
    if images is not None and kind != "coco":
        raise CnnlabError(f"--images {images}: is for a COCO annotation file; --data {path} is a {kind} "
                          f"dataset, whose layout says where its images are")
    if kind == "coco":
        records, classes, ids, carve = _coco(_coco_file(path), split, images, skip_bad)
    elif kind == "voc":
        records, classes, ids, carve = _voc(_voc_root(path), split)
    elif kind == "yolo":
        records, classes, ids, carve = _yolo_any(path, split, skip_bad)
    else:
        raise CnnlabError(f"--data {kind}:{path}: unknown format {kind!r}; expected one of {', '.join(FORMATS)}")
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


def _layout(path: Path) -> str:
    """coco, voc or yolo, from what is at ``path``."""
    if path.is_file() and path.suffix.lower() == ".json":
        return "coco"
    if path.is_file() and path.suffix.lower() in YAML_SUFFIXES:
        return "yolo"
    if (path / "Annotations").is_dir():
        return "voc"
    if ((path / "labels").is_dir() and (path / "images").is_dir()) or _folder_yaml(path):
        return "yolo"
    raise CnnlabError(f"--data {path}: expected {LAYOUTS}")


def _carve(records: list[Annotated], split: str, seed: int, val_fraction: float, path: Path) -> list[Annotated]:
    """train/val from one list: ``val_fraction`` of it (a seeded permutation) is val."""
    if split == "test":
        raise CnnlabError(f"--data {path}: has no test split (evaluate with --split val)")
    order = torch.randperm(len(records), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = min(len(records) - 1, max(1, round(val_fraction * len(records)))) if val_fraction > 0 else 0
    pick = order[:n_val] if split == "val" else order[n_val:]
    return [records[i] for i in sorted(pick)]


def _few(items: list, n: int = 3) -> str:
    return ", ".join(map(str, items[:n])) + (f" and {len(items) - n} more" if len(items) > n else "")


# ---------------------------------------------------------------------------------------
# COCO
# ---------------------------------------------------------------------------------------


def _coco_file(path: Path) -> Path:
    if not (path.is_file() and path.suffix.lower() == ".json"):
        raise CnnlabError(f"--data coco:{path}: expected a COCO annotation file (*.json with images, "
                          f"annotations, categories)")
    return path


def _split_word(name: str) -> str | None:
    """The split a file or folder is named for (``instances_val2017.json``: val), if any."""
    return next((s for s in SPLITS if s in name), None)


def _coco_splits(path: Path) -> dict[str, Path]:
    """The annotation file of each split: ``path`` and its siblings named for the other splits."""
    own = _split_word(path.name)
    if own is None:
        return {"train": path}
    files = {s: path.with_name(path.name.replace(own, s)) for s in SPLITS}
    return {s: f for s, f in files.items() if f == path or f.is_file()}


def _coco(path: Path, split: str, images: Path | None,
          skip_bad: bool) -> tuple[list[Annotated], list[str], dict, bool]:
    files = _coco_splits(path)
    carve = not ("train" in files and "val" in files)  # one file for train and val: carve val from it
    source = files.get(split) if split == "test" or not carve else files.get("train", files.get("val", path))
    if source is None:
        own = _split_word(path.name)
        raise CnnlabError(f"--data {path}: has no {split} split"
                          + (f" (no {path.name.replace(own, split)} beside it)" if own else "")
                          + ("; evaluate with --split val" if split == "test" else ""))
    if images is not None and source != path:  # --images train2017 for instances_val2017.json: val2017
        own, other = _split_word(images.name), _split_word(source.name)
        swapped = images.with_name(images.name.replace(own, other)) if own and other else images
        images = swapped if swapped.is_dir() else images
    doc = _coco_document(source)
    cats = sorted(doc["categories"], key=lambda c: c["id"])
    ids = {c["id"]: i + 1 for i, c in enumerate(cats)}  # category id -> label 1..K
    folders = _image_folders(source, images)
    records, by_id, missing = [], {}, []
    for im in doc["images"]:
        try:
            file = _find_image(folders, im["file_name"], images is not None)
            if file is None:
                missing.append(im["file_name"])
                file = folders[0] / im["file_name"]  # skip_bad: left out as unreadable
            r = Annotated(str(file), int(im["width"]), int(im["height"]), [], [], image_id=im["id"])
        except KeyError as e:
            raise CnnlabError(f"{source}: an image entry lacks field {e.args[0]!r}") from None
        if im["id"] not in by_id:
            by_id[im["id"]] = r
        records.append(r)
    if missing and not skip_bad:
        where = (f"in --images {images}" if images is not None else
                 f"in {', '.join(str(f) for f in folders if f.is_dir())}; give their folder with --images DIR")
        raise CnnlabError(f"{source}: {len(missing)} of {len(records)} image files not found {where}: "
                          f"{_few(missing)}")
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
        raise CnnlabError(f"{source}: {orphans} annotations name an image_id that has no image entry")
    return records, [c["name"] for c in cats], ids, carve


def _coco_document(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CnnlabError(f"{path}: not a readable COCO JSON file ({e.__class__.__name__})") from None
    if not isinstance(doc, dict):
        raise CnnlabError(f"{path}: expected a COCO instances file (a JSON object with images, annotations, "
                          f"categories)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise CnnlabError(f"{path}: field {key!r} missing; expected a COCO instances file")
    return doc


def _image_folders(json_path: Path, images: Path | None) -> list[Path]:
    """Where a COCO file's images may be: ``images``, else beside it and COCO's usual places."""
    if images is not None:
        return [images]
    root = json_path.parent
    folders = [root, root / "images", root.parent / "images", root.parent]
    name = json_path.stem.split("_", 1)[-1]  # instances_val2017 -> val2017
    if name != json_path.stem:
        folders += [root.parent / name, root / name, root.parent / "images" / name]
    return folders


def _find_image(folders: list[Path], name: str, given: bool) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, folder / Path(name).name) if given else (folder / name,):
            if candidate.is_file():
                return candidate
    return None


# ---------------------------------------------------------------------------------------
# Pascal VOC
# ---------------------------------------------------------------------------------------


def _voc_root(path: Path) -> Path:
    if not (path / "Annotations").is_dir():
        raise CnnlabError(f"--data voc:{path}: expected a VOC folder with Annotations/*.xml and JPEGImages/")
    return path


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
# YOLO: label files, the images/ + labels/ folder, and Ultralytics' dataset YAML
# ---------------------------------------------------------------------------------------


def _yolo_any(path: Path, split: str, skip_bad: bool) -> tuple[list[Annotated], list[str], dict, bool]:
    """A dataset YAML, a folder whose data.yaml names its splits, or an images/ + labels/ folder."""
    yaml_file = path if path.is_file() else _folder_yaml(path)
    if yaml_file is not None:
        return _yolo_yaml(yaml_file, split, skip_bad)
    if not ((path / "images").is_dir() and (path / "labels").is_dir()):
        raise CnnlabError(f"--data yolo:{path}: expected a YOLO folder (images/, labels/, classes.txt) or an "
                          f"Ultralytics dataset *.yaml (path, train, val, names)")
    return _yolo(path, split, skip_bad)


def _folder_yaml(root: Path) -> Path | None:
    """``data.yaml`` (or ``dataset.yaml``) in ``root`` when it names a train split, as Ultralytics exports do."""
    for name in ("data.yaml", "dataset.yaml", "data.yml"):
        if (root / name).is_file():
            doc = _read_yaml(root / name)
            if isinstance(doc, dict) and doc.get("train"):
                return root / name
    return None


def _yolo(root: Path, split: str, skip_bad: bool) -> tuple[list[Annotated], list[str], dict, bool]:
    classes = _yolo_classes(root)
    images_dir = root / "images"
    carve = not (images_dir / "train").is_dir()
    if not carve:
        images_dir = images_dir / split
        if not images_dir.is_dir():
            raise CnnlabError(f"--data {root}: has no {split} split (images/{split}/)")
    files = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    names = root / "classes.txt" if (root / "classes.txt").is_file() else root / "data.yaml"
    return _yolo_records(files, classes, str(names), f"--data {root}", skip_bad), classes, _label_ids(classes), carve


def _label_ids(classes: list[str]) -> dict:
    return {i: i + 1 for i in range(len(classes))}


def label_file(image: Path) -> Path:
    """Ultralytics' rule: the image's path with its last ``images`` folder swapped for ``labels``, as .txt."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _yolo_records(images: list[Path], classes: list[str], names_from: str, where: str,
                  skip_bad: bool) -> list[Annotated]:
    """One record per image, its boxes from its label file (none: a negative)."""
    from cnnlab.images import ImageError, peek_image

    if not images:
        return []
    records, unknown, labelled = [], [], 0
    for image in images:
        label = label_file(image)
        try:
            _, h, w = peek_image(image)
        except ImageError:
            if not skip_bad:
                raise
            records.append(Annotated(str(image), 1, 1, [], [], image_id=str(image)))  # left out when decoded
            continue
        boxes, cats = [], []
        if label.is_file():
            labelled += 1
            for n, c, box in _label_lines(label, w, h):
                if not 0 <= c < len(classes):
                    unknown.append((c, f"{image} ({label}:{n})"))
                boxes.append(box)
                cats.append(c)
        records.append(Annotated(str(image), w, h, boxes, cats, image_id=str(image)))
    if unknown:
        raise CnnlabError(f"{where}: unknown category ids {_few(sorted({c for c, _ in unknown}))} in "
                          f"{len({f for _, f in unknown})} files: {_few(sorted({f for _, f in unknown}))}; "
                          f"class indices must be 0..{len(classes) - 1}, one per name in {names_from}")
    if not labelled:
        folder = label_file(images[0]).parent
        raise CnnlabError(f"{where}: none of the {len(images)} images in {images[0].parent} has a label file"
                          f"{'' if folder.is_dir() else f' (no folder {folder})'}; expected one "
                          f"'class cx cy w h' .txt per image at {label_file(images[0])} (the image path "
                          f"with images/ swapped for labels/)")
    return records


def _label_lines(label: Path, w: int, h: int):
    """(line number, class, [x0, y0, x1, y1] in pixels) for each box or polygon of a YOLO label file."""
    try:
        text = label.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise CnnlabError(f"{label}: cannot read the label file ({e.__class__.__name__})") from None
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            c, values = int(parts[0]), [float(v) for v in parts[1:]]
        except ValueError:
            values = []
        if len(values) == 4:
            cx, cy, bw, bh = values
            x0, y0, x1, y1 = cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2
        elif len(values) >= 6 and len(values) % 2 == 0:  # a segment polygon x1 y1 x2 y2 ...: its box
            x0, x1, y0, y1 = min(values[0::2]), max(values[0::2]), min(values[1::2]), max(values[1::2])
        else:
            raise CnnlabError(f"{label}:{n}: expected 'class cx cy w h' (an integer and four numbers 0..1) "
                              f"or a polygon 'class x1 y1 x2 y2 ...', got {line.strip()[:60]!r}")
        if max(abs(v) for v in values) > 2:  # pixels where fractions of the image belong
            raise CnnlabError(f"{label}:{n}: coordinates {values[:4]} are not normalised to 0..1; divide x "
                              f"and width by the image width ({w}), y and height by its height ({h})")
        yield n, c, [x0 * w, y0 * h, x1 * w, y1 * h]


def _yolo_classes(root: Path) -> list[str]:
    if (root / "classes.txt").is_file():
        return [line.strip() for line in (root / "classes.txt").read_text().splitlines() if line.strip()]
    if (root / "data.yaml").is_file():
        doc = _read_yaml(root / "data.yaml")
        if isinstance(doc, dict) and ("names" in doc or "nc" in doc):
            return _yaml_names(doc, root / "data.yaml")
    raise CnnlabError(f"--data {root}: a YOLO folder needs classes.txt (one name per line) or data.yaml with names")


def _read_yaml(path: Path):
    """The YAML document at ``path`` (safe_load: plain values only), or one CnnlabError naming it."""
    import yaml

    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise CnnlabError(f"{path}: {path.stat().st_size:,} bytes, too large for a dataset YAML")
        return yaml.safe_load(path.read_bytes())
    except OSError as e:
        raise CnnlabError(f"{path}: cannot read the dataset YAML ({e.strerror or e.__class__.__name__})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CnnlabError(f"{path}: not valid YAML ({getattr(e, 'problem', None) or e.__class__.__name__}"
                          f"{where})") from None


def _yaml_names(doc: dict, path: Path) -> list[str]:
    """``names`` as a list or a mapping {0: name, ...}; ``nc`` alone gives class_0, class_1..."""
    names, nc = doc.get("names"), doc.get("nc")
    if names is None and isinstance(nc, int) and nc > 0:
        return [f"class_{i}" for i in range(nc)]
    if isinstance(names, dict):
        try:
            keyed = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            keyed = {}
        if sorted(keyed) != list(range(len(names))):
            raise CnnlabError(f"{path}: names keys must be the class indices 0..{len(names) - 1}, got "
                              f"{_few(list(names), 5)}")
        names = [keyed[i] for i in range(len(keyed))]
    if not isinstance(names, list) or not names:
        raise CnnlabError(f"{path}: no class names; expected names: [cat, dog] or names: {{0: cat, 1: dog}}")
    if isinstance(nc, int) and nc != len(names):
        raise CnnlabError(f"{path}: nc is {nc} but names lists {len(names)} classes")
    return [str(n) for n in names]


def _yolo_yaml(path: Path, split: str, skip_bad: bool) -> tuple[list[Annotated], list[str], dict, bool]:
    """An Ultralytics dataset YAML: ``path`` (root), ``train``/``val``/``test`` and ``names``."""
    doc = _read_yaml(path)
    if not isinstance(doc, dict):
        raise CnnlabError(f"{path}: expected an Ultralytics dataset YAML (a mapping with path, train, val, names)")
    classes = _yaml_names(doc, path)
    if not doc.get("train"):
        raise CnnlabError(f"{path}: no train entry; expected train: images/train (a folder of images, or a "
                          f".txt list of them, relative to the YAML's path: entry)")
    carve = split != "test" and not doc.get("val")  # no val: carve it from train
    key = "train" if carve else split
    if not doc.get(key):
        raise CnnlabError(f"--data {path}: has no {split} split (no {split}: entry)"
                          + ("; evaluate with --split val" if split == "test" else ""))
    root = Path(str(doc.get("path") or "")).expanduser()
    root = root if root.is_absolute() else path.parent / root
    files = _yaml_images(doc[key], root, path, key)
    where = f"{path} ({key}: {doc[key]})"
    if not files:
        raise CnnlabError(f"{where}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return _yolo_records(files, classes, str(path), where, skip_bad), classes, _label_ids(classes), carve


def _yaml_images(entry, root: Path, path: Path, key: str) -> list[Path]:
    """The image files of a YAML split: folders (searched recursively), .txt lists, or a list of either."""
    files = []
    for item in entry if isinstance(entry, list) else [entry]:
        item = str(item)
        found = root / item
        if not found.exists() and item.startswith("../"):  # Roboflow exports: ../train/images beside the YAML
            found = root / item[3:]
        if found.is_dir():
            files += sorted(p for p in found.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif found.is_file() and found.suffix.lower() == ".txt":
            files += _image_list(found, root)
        else:
            raise CnnlabError(f"{path}: {key}: {found} not found; expected a folder of images (labels in the "
                              f"matching labels/ folder) or a .txt list of image paths, relative to {root}")
    return files


def _image_list(listing: Path, root: Path) -> list[Path]:
    """A .txt of image paths, one a line: absolute, ``./`` (the list's folder) or relative to the root."""
    files, missing = [], []
    for line in listing.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        p = Path(line)
        if not p.is_absolute():
            p = listing.parent / line if line.startswith("./") or not (root / line).exists() else root / line
        (files if p.is_file() else missing).append(p)
    if missing:
        raise CnnlabError(f"{listing}: {len(missing)} listed images not found: {_few(missing)}")
    return files
