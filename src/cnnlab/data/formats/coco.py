"""COCO instances JSON (COCO itself, Roboflow's "COCO" export), read strictly.

    load_dataset("annotations/instances_train2017.json", "val", task="detect")  # instances_val2017.json
    load_dataset("my_roboflow_export", "test", task="detect")   # train/ valid/ test/_annotations.coco.json

Splits: a file named for a split (``instances_val2017.json``) finds the others by swapping that
word, in its name and in the ``--images`` folder's name (``train2017`` -> ``val2017``); a file in
a split folder (Roboflow: ``train/_annotations.coco.json``, ``valid/``, ``test/``) finds the same
name in the sibling split folders; any other file holds the whole set (carved by seed).

Images are looked up in ``--images`` when given, else beside the JSON, in ``images/`` beside it,
in ``../images/`` and in ``../<name>/`` for ``instances_<name>.json``. Images listed but absent are
left out, counted and named in a warning; all absent is an error.

Every malformed entry is one CnnlabError naming the file, the entry (``annotations[12]``) and the
field: a bbox that is not four numbers, a category without id or name, ids of mixed types, image
ids listed twice, sizes that are not positive whole numbers, references to unknown images or
categories, more than ``MAX_BOXES_PER_IMAGE`` boxes on one image. Reading is linear: one pass over
images and one over annotations, with dicts.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

from cnnlab.data.detection import MAX_BOXES_PER_IMAGE, Annotated, check_classes, few, too_many_boxes
from cnnlab.data.formats.box_splits import ALL, SPLIT_WORDS, Part, choose, split_word
from cnnlab.data.formats.text import read_utf8
from cnnlab.data.registry import SPLITS
from cnnlab.errors import CnnlabError

ROBOFLOW_NAME = "_annotations.coco.json"
NUMBER = (int, float)
ID_TYPES = frozenset((int, str))  # an image or category id (not a bool, not a list)


# ---------------------------------------------------------------------------------------
# where the files are
# ---------------------------------------------------------------------------------------


def coco_file(path: Path) -> Path | None:
    """The COCO file that ``path`` (a file, a Roboflow export or split folder, or a folder with
    ``annotations/instances_*.json``) stands for; None when there is none."""
    if path.is_file():
        return path if path.suffix.lower() == ".json" else None
    if (path / ROBOFLOW_NAME).is_file():
        return path / ROBOFLOW_NAME
    for split in SPLITS:
        for word in SPLIT_WORDS[split]:
            if (path / word / ROBOFLOW_NAME).is_file():
                return path / word / ROBOFLOW_NAME
    found = sorted((path / "annotations").glob("instances_*.json")) if (path / "annotations").is_dir() else []
    return next((f for f in found if "train" in f.name), found[0] if found else None)


def _split_in_name(name: str) -> str | None:
    """The split a file is named for (``instances_val2017.json``: val), if any."""
    return next((s for s in SPLITS if s in name), None)


def coco_splits(path: Path) -> dict[str, Path]:
    """The annotation file of each split: ``path`` and its siblings named for the other splits."""
    own = _split_in_name(path.name)
    if own is not None:
        files = {s: path.with_name(path.name.replace(own, s)) for s in SPLITS}
        files = {s: f for s, f in files.items() if f == path or f.is_file()}
        return files if "train" in files else {"train": path}  # a lone val file: its images are the set
    folder = split_word(path.parent.name)
    if folder is None:
        return {ALL: path}
    files = {}
    for split, words in SPLIT_WORDS.items():
        for word in words:
            if (path.parent.parent / word / path.name).is_file():
                files[split] = path.parent.parent / word / path.name
                break
    return files


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------


def read_coco_part(path: Path, split: str, images: Path | None) -> Part:
    """The records of the file that holds ``split`` of the COCO set at ``path``."""
    files = coco_splits(path)
    source, how = choose(files, split, str(path))
    if images is not None and source != path:  # --images train2017 for instances_val2017.json: val2017
        own, other = _split_in_name(images.name), _split_in_name(source.name)
        swapped = images.with_name(images.name.replace(own, other)) if own and other else images
        images = swapped if swapped.is_dir() else images
    records, classes, ids, notes = read_coco(source)
    records, missing_note = _locate_images(records, source, images)
    return Part(records, classes, ids, how, notes + missing_note)


def load_json(path: Path) -> dict:
    """A COCO file's top-level object with its images, annotations and categories lists."""
    text = read_utf8(path, "COCO JSON file")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise CnnlabError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise CnnlabError(f"{path}: not a COCO file: its JSON nests deeper than a reader can follow") from None
    if not isinstance(doc, dict):
        raise CnnlabError(f"{path}: expected a COCO instances file (a JSON object with images, annotations, "
                          f"categories)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise CnnlabError(f"{path}: field {key!r} missing or not a list; expected a COCO instances file")
    return doc


def read_coco(path: Path) -> tuple[list[Annotated], list[str], dict, list[str]]:
    """(records with the images' file names as listed, classes, category id -> label, notes)."""
    doc = load_json(path)
    cats, notes = _categories(doc["categories"], doc["annotations"], path)
    ids = {c["id"]: i + 1 for i, c in enumerate(cats)}  # category id -> label 1..K
    by_id: dict = {}
    records = []
    for i, im in enumerate(doc["images"]):
        where = f"{path}: images[{i}]"
        _entry(im, where)
        image_id = _id(im, "id", where)
        name = im.get("file_name")
        if not isinstance(name, str) or not name:
            raise CnnlabError(f"{where} (id {image_id!r}): field 'file_name': expected a file name, got {_show(name)}")
        w, h = (_size(im, key, f"{where} (id {image_id!r})") for key in ("width", "height"))
        if image_id in by_id:
            first = by_id[image_id]
            dupes = _duplicate_ids(doc["images"])
            raise CnnlabError(f"{path}: {len(dupes)} duplicate image ids: {image_id!r} (images[{first[0]}] "
                              f"{first[1].file}, images[{i}] {name}){'; also ' + few(dupes[1:]) if len(dupes) > 1 else ''}")
        r = Annotated(name, w, h, [], [], image_id=image_id)
        by_id[image_id] = (i, r)
        records.append(r)
    unknown_images, unknown_cats = [], {}
    for i, a in enumerate(doc["annotations"]):  # a million of them: checks inline, messages built on error only
        if type(a) is not dict:
            _entry(a, f"{path}: annotations[{i}]")
        image_id = a.get("image_id")
        hit = by_id.get(image_id) if type(image_id) in ID_TYPES else None
        if hit is None:
            _id(a, "image_id", f"{path}: annotations[{i}]")  # raises for an id that is no id at all
            unknown_images.append(i)
            continue
        r = hit[1]
        category = a.get("category_id")
        if type(category) not in ID_TYPES or category not in ids:
            _id(a, "category_id", f"{path}: annotations[{i}]")
            unknown_cats.setdefault(category, (i, r.file))
            continue
        box = a.get("bbox")
        if type(box) is not list or len(box) != 4 or not _numbers(*box):
            raise CnnlabError(f"{path}: annotations[{i}] (id {a.get('id')!r}): field 'bbox': expected "
                              f"[x, y, width, height] (4 numbers), got {_show(box)}")
        if a.get("iscrowd", 0):
            continue  # crowd regions are ignored by COCOeval too
        if len(r.boxes) >= MAX_BOXES_PER_IMAGE:
            raise too_many_boxes(f"{path}: image id {image_id!r} ({r.file})", len(r.boxes) + 1)
        x, y, w, h = box
        r.boxes.append([x, y, x + w, y + h])
        r.categories.append(category)
    if unknown_images:
        i = unknown_images[0]
        raise CnnlabError(f"{path}: annotations[{i}]: field 'image_id': "
                          f"{_show(doc['annotations'][i]['image_id'])} is no image's id ({len(unknown_images)} "
                          f"annotations name unknown images)")
    if unknown_cats:
        first = next(iter(unknown_cats.values()))
        raise CnnlabError(f"{path}: unknown category ids {few([repr(c) for c in unknown_cats])} in "
                          f"{len({f for _, f in unknown_cats.values()})} files: "
                          f"{few(sorted({f for _, f in unknown_cats.values()}))} (first at annotations[{first[0]}], "
                          f"field 'category_id'); known: {few([repr(c['id']) for c in cats], 10)}")
    return records, [c["name"] for c in cats], ids, notes


def _categories(entries: list, annotations: list, path: Path) -> tuple[list[dict], list[str]]:
    """The categories sorted by id, checked; a supercategory entry that no annotation uses (Roboflow's
    id 0 named for the dataset) is left out and said."""
    cats = []
    for i, c in enumerate(entries):
        where = f"{path}: categories[{i}]"
        _entry(c, where)
        _id(c, "id", where)
        if not isinstance(c.get("name"), str) or not c["name"].strip():
            raise CnnlabError(f"{where}: field 'name': expected the class name, got {_show(c.get('name'))}")
        cats.append(c)
    if len({type(c["id"]) for c in cats}) > 1:
        raise CnnlabError(f"{path}: categories: field 'id' mixes {' and '.join(sorted({type(c['id']).__name__ for c in cats}))} "
                          f"ids; expected all integers or all strings")
    seen: dict = {}
    for i, c in enumerate(cats):
        if c["id"] in seen:
            raise CnnlabError(f"{path}: categories[{seen[c['id']]}] and categories[{i}]: the same id {c['id']!r}")
        seen[c["id"]] = i
    notes = []
    under = Counter(c["supercategory"] for c in cats
                    if isinstance(c.get("supercategory"), str) and c["supercategory"] != c["name"])
    groups = [c for c in cats if under[c["name"]]]  # the supercategory of another category
    if groups:
        used = {a.get("category_id") for a in annotations if isinstance(a, dict)}
        groups = [c for c in groups if c["id"] not in used]
    if groups:
        notes.append(f"{path}: left out {len(groups)} categories that only group others and label no box: "
                     f"{few([repr(c['name']) for c in groups])}")
        left_out = {c["id"] for c in groups}
        cats = [c for c in cats if c["id"] not in left_out]
    cats = sorted(cats, key=lambda c: c["id"])
    check_classes([c["name"] for c in cats], f"{path}: categories")
    return cats, notes


def _duplicate_ids(images: list) -> list[str]:
    seen, dupes = set(), []
    for im in images:
        image_id = im.get("id") if isinstance(im, dict) else None
        if type(image_id) in (int, str):
            if image_id in seen:
                dupes.append(repr(image_id))
            seen.add(image_id)
    return dupes


def _entry(value, where: str) -> None:
    if not isinstance(value, dict):
        raise CnnlabError(f"{where}: expected an object, got {_show(value)}")


def _id(entry: dict, key: str, where: str):
    value = entry.get(key)
    if type(value) is int or (isinstance(value, str) and value):
        return value
    got = "nothing" if key not in entry else _show(value)
    raise CnnlabError(f"{where}: field {key!r}: expected an integer or string id, got {got}")


def _size(entry: dict, key: str, where: str) -> int:
    """A positive whole number of pixels, or 0 when the entry gives none (the image's header says)."""
    if key not in entry:
        return 0
    value = entry[key]
    if type(value) in NUMBER and math.isfinite(value) and value == int(value) and value > 0:
        return int(value)
    raise CnnlabError(f"{where}: field {key!r}: expected a positive whole number of pixels, got {_show(value)}")


def _numbers(x, y, w, h) -> bool:
    """Four finite JSON numbers (not booleans)."""
    return (type(x) in NUMBER and type(y) in NUMBER and type(w) in NUMBER and type(h) in NUMBER
            and (x + y + w + h) * 0 == 0)  # NaN or infinity makes the sum non-finite


def _show(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '...' if len(text) > 40 else text}"


# ---------------------------------------------------------------------------------------
# images on disk
# ---------------------------------------------------------------------------------------


def _locate_images(records: list[Annotated], source: Path,
                   images: Path | None) -> tuple[list[Annotated], list[str]]:
    """Records whose image file exists (``file`` set to its path), and the note on the ones absent."""
    folders = _image_folders(source, images)
    found, missing = [], []
    for r in records:
        file = _find_image(folders, r.file, images is not None)
        if file is None:
            missing.append(r.file)
            continue
        r.file = str(file)
        found.append(r)
    if not missing:
        return found, []
    where = (f"in --images {images}" if images is not None else
             f"in {', '.join(str(f) for f in folders if f.is_dir())}; give their folder with --images DIR")
    line = f"{source}: {len(missing)} of {len(records)} image files not found {where}: {few(missing)}"
    if not found:
        raise CnnlabError(line)
    return found, [f"{line}; left out with their boxes"]


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
