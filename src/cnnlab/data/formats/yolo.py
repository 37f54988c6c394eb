"""YOLO labels: the images/ + labels/ folder, and Ultralytics' dataset YAML (Roboflow's "YOLO" export).

    load_dataset("my_yolo_set", "train", task="detect")   # images/ + labels/*.txt + classes.txt
    load_dataset("coco8.yaml", "val", task="detect")      # an Ultralytics dataset YAML
    load_dataset("roboflow_export", "test", task="detect")  # data.yaml with train: ../train/images

* **YOLO folder**: ``images/`` and ``labels/`` (optionally ``images/<split>/``, ``valid`` meaning
  val); one ``class cx cy w h`` line per box, normalised to 0..1 (or a polygon
  ``class x1 y1 x2 y2 ...``, boxed); classes from ``classes.txt`` (or ``names`` in ``data.yaml``).
  Without split folders the whole set is carved by seed. A folder whose ``data.yaml`` names a
  ``train`` split is read as that YAML.
* **Ultralytics YAML** (``*.yaml``): ``path`` (the root; relative to the YAML's folder, which it
  defaults to), ``train``/``val``/``test`` (image folders, ``.txt`` lists of images, or lists of
  either, relative to the root; Roboflow writes ``../train/images`` for a ``train/`` beside the
  YAML, which is also accepted) and ``names`` (a list, or a mapping ``{0: name}``; ``nc`` alone
  gives ``class_0``...; at most ``MAX_CLASSES``). Each image's labels are at its path with the last
  ``images`` folder swapped for ``labels`` and the suffix for ``.txt``; an image without a label
  file is a negative.
"""
from __future__ import annotations

from pathlib import Path

from cnnlab.data.detection import (MAX_BOXES_PER_IMAGE, MAX_CLASSES, Annotated, check_classes, few,
                                   too_many_boxes)
from cnnlab.data.formats.box_images import IMAGE_SUFFIXES
from cnnlab.data.formats.box_splits import ALL, SPLIT_WORDS, Part, choose
from cnnlab.data.formats.text import read_utf8
from cnnlab.errors import CnnlabError

YAML_SUFFIXES = (".yaml", ".yml")
MAX_YAML_BYTES = 1 << 20  # a dataset YAML is a page of text
YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml")


def read_yolo_part(path: Path, split: str, skip_bad: bool) -> Part:
    """A dataset YAML, a folder whose data.yaml names its splits, or an images/ + labels/ folder."""
    yaml_file = path if path.is_file() else folder_yaml(path)
    if yaml_file is not None:
        return _yolo_yaml(yaml_file, split, skip_bad)
    if not ((path / "images").is_dir() and (path / "labels").is_dir()):
        raise CnnlabError(f"--data yolo:{path}: expected a YOLO folder (images/, labels/, classes.txt) or an "
                          f"Ultralytics dataset *.yaml (path, train, val, names)")
    return _yolo(path, split, skip_bad)


def folder_yaml(root: Path) -> Path | None:
    """``data.yaml`` (or ``dataset.yaml``) in ``root`` when it names a train split, as Ultralytics exports do."""
    for name in YAML_NAMES:
        if (root / name).is_file():
            doc = read_yaml(root / name)
            if isinstance(doc, dict) and doc.get("train"):
                return root / name
    return None


def _yolo(root: Path, split: str, skip_bad: bool) -> Part:
    classes = _yolo_classes(root)
    folders = {s: root / "images" / w for s, words in SPLIT_WORDS.items() for w in reversed(words)
               if (root / "images" / w).is_dir()}
    images_dir, how = choose(folders if "train" in folders else {ALL: root / "images"}, split, str(root))
    files = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    names = root / "classes.txt" if (root / "classes.txt").is_file() else root / "data.yaml"
    records = _yolo_records(files, classes, str(names), f"--data {root}", skip_bad)
    return Part(records, classes, _label_ids(classes), how)


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
        raise CnnlabError(f"{where}: unknown category ids {few(sorted({c for c, _ in unknown}))} in "
                          f"{len({f for _, f in unknown})} files: {few(sorted({f for _, f in unknown}))}; "
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
    boxes = 0
    for n, line in enumerate(read_utf8(label, "label file").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        boxes += 1
        if boxes > MAX_BOXES_PER_IMAGE:
            raise too_many_boxes(f"{label}:{n}", boxes)
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
        if not max(abs(v) for v in values) <= 2:  # pixels where fractions of the image belong (or NaN)
            raise CnnlabError(f"{label}:{n}: coordinates {values[:4]} are not normalised to 0..1; divide x "
                              f"and width by the image width ({w}), y and height by its height ({h})")
        yield n, c, [x0 * w, y0 * h, x1 * w, y1 * h]


def _yolo_classes(root: Path) -> list[str]:
    if (root / "classes.txt").is_file():
        names = [line.strip() for line in read_utf8(root / "classes.txt", "class list").splitlines() if line.strip()]
        return check_classes(names, str(root / "classes.txt"))
    if (root / "data.yaml").is_file():
        doc = read_yaml(root / "data.yaml")
        if isinstance(doc, dict) and ("names" in doc or "nc" in doc):
            return _yaml_names(doc, root / "data.yaml")
    raise CnnlabError(f"--data {root}: a YOLO folder needs classes.txt (one name per line) or data.yaml with names")


def read_yaml(path: Path):
    """The YAML document at ``path`` (safe_load: plain values only), or one CnnlabError naming it."""
    import yaml

    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise CnnlabError(f"{path}: {path.stat().st_size:,} bytes, too large for a dataset YAML")
    except OSError as e:
        raise CnnlabError(f"{path}: cannot read the dataset YAML ({e.strerror or e.__class__.__name__})") from None
    text = read_utf8(path, "dataset YAML")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CnnlabError(f"{path}: not valid YAML ({getattr(e, 'problem', None) or e.__class__.__name__}"
                          f"{where})") from None
    except RecursionError:
        raise CnnlabError(f"{path}: not a dataset YAML: it nests deeper than a reader can follow") from None


def _yaml_names(doc: dict, path: Path) -> list[str]:
    """``names`` as a list or a mapping {0: name, ...}; ``nc`` alone gives class_0, class_1..."""
    names, nc = doc.get("names"), doc.get("nc")
    if isinstance(nc, bool) or (nc is not None and not isinstance(nc, int)) or (isinstance(nc, int) and nc < 1):
        raise CnnlabError(f"{path}: nc: expected the number of classes (a whole number >= 1), got {nc!r}")
    if isinstance(nc, int) and nc > MAX_CLASSES:
        raise CnnlabError(f"{path}: nc: {nc:,} classes; at most {MAX_CLASSES:,} are supported")
    if names is None and isinstance(nc, int):
        return [f"class_{i}" for i in range(nc)]
    if isinstance(names, dict):
        if len(names) > MAX_CLASSES:
            raise CnnlabError(f"{path}: names: {len(names):,} classes; at most {MAX_CLASSES:,} are supported")
        try:
            keyed = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            keyed = {}
        if sorted(keyed) != list(range(len(names))):
            raise CnnlabError(f"{path}: names keys must be the class indices 0..{len(names) - 1}, got "
                              f"{few(list(names), 5)}")
        names = [keyed[i] for i in range(len(keyed))]
    if not isinstance(names, list) or not names:
        raise CnnlabError(f"{path}: no class names; expected names: [cat, dog] or names: {{0: cat, 1: dog}}")
    if isinstance(nc, int) and nc != len(names):
        raise CnnlabError(f"{path}: nc is {nc} but names lists {len(names)} classes")
    return check_classes([str(n) for n in names], f"{path}: names")


def _yolo_yaml(path: Path, split: str, skip_bad: bool) -> Part:
    """An Ultralytics dataset YAML: ``path`` (root), ``train``/``val``/``test`` and ``names``."""
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise CnnlabError(f"{path}: expected an Ultralytics dataset YAML (a mapping with path, train, val, names)")
    classes = _yaml_names(doc, path)
    if not doc.get("train"):
        raise CnnlabError(f"{path}: no train entry; expected train: images/train (a folder of images, or a "
                          f".txt list of them, relative to the YAML's path: entry)")
    entries = {s: doc[s] for s in ("train", "val", "test") if doc.get(s)}
    key, how = choose(dict(zip(entries, entries)), split, str(path))
    root = Path(str(doc.get("path") or "")).expanduser()
    root = root if root.is_absolute() else path.parent / root
    files = _yaml_images(doc[key], root, path, key)
    where = f"{path} ({key}: {doc[key]})"
    if not files:
        raise CnnlabError(f"{where}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return Part(_yolo_records(files, classes, str(path), where, skip_bad), classes, _label_ids(classes), how)


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
    for line in read_utf8(listing, "image list").splitlines():
        line = line.strip()
        if not line:
            continue
        p = Path(line)
        if not p.is_absolute():
            p = listing.parent / line if line.startswith("./") or not (root / line).exists() else root / line
        (files if p.is_file() else missing).append(p)
    if missing:
        raise CnnlabError(f"{listing}: {len(missing)} listed images not found: {few(missing)}")
    return files
