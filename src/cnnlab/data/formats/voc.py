"""Pascal VOC XML in any arrangement.

    load_dataset("VOCdevkit/VOC2007", "test", task="detect")   # Annotations/ + JPEGImages/ + ImageSets/Main
    load_dataset("labelimg_folder", "train", task="detect")      # each .xml beside its image
    load_dataset("roboflow_voc_export", "val", task="detect")    # train/ valid/ test/, XML beside the images

Arrangements, tried in this order in a folder:

* an XML folder (``Annotations/``, ``annotations/``, ``xmls/``, ``xml/`` or ``labels/`` holding
  ``.xml``) beside an image folder (``JPEGImages/``, ``images/``, ``Images/``, ``imgs/``); with
  ``ImageSets/Main/<split>.txt`` (VOC's id lists) those lists are the splits;
* each ``.xml`` beside its image in the folder itself (labelImg, Roboflow's "Pascal VOC" export);
* split folders ``train/``, ``valid/`` (or ``val/``), ``test/``, each in one of the arrangements
  above: they are the splits.

Each XML is paired to its image by its ``<filename>``, then by stem. XMLs whose image is absent
are left out and counted (all absent: an error); images without an XML are kept as negatives
and counted. Classes: ``classes.txt`` (one per line) or the ``<name>`` values found in all splits.
VOC pixels are 1-based and inclusive: a box is (xmin - 1, ymin - 1, xmax, ymax) in pixel edges.
``<size>`` is metadata: the image's own size is used (see ``box_images.use_image_sizes``).
"""
from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from cnnlab.data.detection import MAX_BOXES_PER_IMAGE, Annotated, check_classes, few, too_many_boxes
from cnnlab.data.formats.box_images import ImageFinder, image_names, is_image
from cnnlab.data.formats.box_splits import ALL, FROM_TRAIN, OWN, Part, choose, split_folders
from cnnlab.data.formats.text import read_utf8
from cnnlab.data.registry import SPLITS
from cnnlab.errors import CnnlabError

XML_DIRS = ("Annotations", "annotations", "xmls", "xml", "labels")
IMAGE_DIRS = ("JPEGImages", "images", "Images", "imgs", "JPEG")
LAYOUT = ("Pascal VOC XML: Annotations/*.xml + JPEGImages/ (ImageSets/Main lists optional), images/ + "
          "annotations/ side by side, each .xml beside its image, or those in train/ valid/ test/")


@dataclass
class Arrangement:
    """Where a VOC set's XMLs and images are: ``{split or ALL: (xml folder, image folder)}``."""

    description: str
    sources: dict[str, tuple[Path, Path]]
    lists: dict[str, Path]  # ImageSets/Main/<split>.txt, when the set has them


def _holds(folder: Path, test) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(test(e.name) for e in entries)
    except OSError:
        return False


def _has_xml(folder: Path) -> bool:
    return _holds(folder, lambda n: n.lower().endswith(".xml"))


def _pair(folder: Path) -> tuple[Path, Path, str] | None:
    """(XML folder, image folder, description) of one VOC arrangement in ``folder``, or None."""
    for name in XML_DIRS:
        xml = folder / name
        if xml.is_dir() and _has_xml(xml):
            images = next((folder / d for d in IMAGE_DIRS if (folder / d).is_dir()), None)
            if images is None:
                images = xml if _holds(xml, is_image) else folder
            if (name, images.name) == ("Annotations", "JPEGImages"):
                return xml, images, "Pascal VOC (Annotations/*.xml)"
            where = "images beside them" if images == xml else \
                "images beside the folder" if images == folder else f"{images.name}/"
            return xml, images, f"Pascal VOC ({name}/*.xml, {where})"
    if _has_xml(folder) and _holds(folder, is_image):
        return folder, folder, "Pascal VOC XML beside the images"
    return None


def voc_arrangement(root: Path) -> Arrangement | None:
    """The VOC arrangement at ``root`` (names only; nothing is parsed), or None."""
    found = _pair(root)
    if found:
        xml, images, description = found
        listed = root / "ImageSets" / "Main"
        lists = {s: listed / f"{s}.txt" for s in SPLITS if (listed / f"{s}.txt").is_file()}
        return Arrangement(description, {s: (xml, images) for s in lists} or {ALL: (xml, images)}, lists)
    folders = split_folders(root)
    pairs = {s: p for s, p in ((s, _pair(f)) for s, f in folders.items()) if p}
    if not pairs:
        return None
    kinds = sorted({p[2] for p in pairs.values()})
    return Arrangement(f"{kinds[0] if len(kinds) == 1 else 'Pascal VOC'} in "
                       f"{', '.join(folders[s].name + '/' for s in pairs)}",
                       {s: (p[0], p[1]) for s, p in pairs.items()}, {})


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------


def read_voc_part(root: Path, split: str) -> Part:
    """The records of ``split`` of the VOC set at ``root``, its classes, how to carve them, notes."""
    arrangement = voc_arrangement(root)
    if arrangement is None:
        raise CnnlabError(f"--data voc:{root}: no VOC XML found; expected {LAYOUT}")
    (xml_dir, image_dir), how = choose(arrangement.sources, split, str(root))
    read = {pair: _read_folder(*pair) for pair in dict.fromkeys(arrangement.sources.values())}
    records, orphans, negatives = read[xml_dir, image_dir]
    notes = []
    key = {OWN: split, FROM_TRAIN: "train"}.get(how, ALL)  # the split whose list (if any) holds the records
    if key in arrangement.lists:
        records, notes = _listed(arrangement.lists[key], records, negatives, orphans)
    else:
        notes += _orphan_note(xml_dir, orphans, len(records))
        if negatives:
            notes.append(f"{image_dir}: {len(negatives)} images have no XML, kept as negatives: "
                         f"{few([Path(r.file).name for r in negatives])}")
        records = sorted(records + negatives, key=lambda r: r.file)
    names = sorted({c for recs, _, _ in read.values() for r in recs for c in r.categories})
    listing = root / "classes.txt"
    classes = check_classes(_class_lines(listing) if listing.is_file() else names,
                            str(listing) if listing.is_file() else f"{root}: the <name> of every <object>")
    return Part(records, classes, {c: i + 1 for i, c in enumerate(classes)}, how, notes)


def _class_lines(path: Path) -> list[str]:
    return [line.strip() for line in read_utf8(path, "class list").splitlines() if line.strip()]


def _listed(listing: Path, records: list[Annotated], negatives: list[Annotated],
            orphans: list[Path]) -> tuple[list[Annotated], list[str]]:
    """The records whose id (XML or image stem) is in an ImageSets list; a note on ids with neither."""
    wanted = dict.fromkeys(read_utf8(listing, "image list").split())
    by_id = {r.image_id: r for r in records} | {Path(r.file).stem: r for r in negatives}
    absent = [i for i in wanted if i not in by_id]
    picked = sorted((by_id[i] for i in wanted if i in by_id), key=lambda r: r.file)
    if not picked:
        raise CnnlabError(f"{listing}: none of its {len(wanted)} ids has an XML with its image"
                          + (f" ({few(absent)})" if absent else ""))
    lost = {x.stem for x in orphans}
    return picked, [f"{listing}: {len(absent)} listed ids have no XML with an image "
                    f"({sum(i in lost for i in absent)} XMLs without their image); left out: {few(absent)}"] if absent else []


def _orphan_note(xml_dir: Path, orphans: list[Path], n_paired: int) -> list[str]:
    if not orphans:
        return []
    line = f"{xml_dir}: {len(orphans)} XML files name an image that is not there: {few([x.name for x in orphans])}"
    if not n_paired:
        raise CnnlabError(f"{line}; no XML has its image (expected each image beside its XML, or in an images "
                          f"folder beside the XML folder, named by <filename> or by the XML's stem)")
    return [f"{line}; left out"]


def _read_folder(xml_dir: Path, image_dir: Path) -> tuple[list[Annotated], list[Path], list[Annotated]]:
    """(a record per XML paired to its image, XMLs whose image is absent, images without an XML)."""
    finder = ImageFinder([image_dir])
    records, orphans, claimed = [], [], {}
    for xml in sorted(p for p in xml_dir.iterdir() if p.suffix.lower() == ".xml"):
        name, w, h, boxes, names = _parse_voc(xml)
        image = finder.find(name, xml.stem)
        if image is None:
            orphans.append(xml)
            continue
        if image in claimed:
            raise CnnlabError(f"{xml} and {claimed[image]} both belong to the image {image} (by <filename> "
                              f"or by stem); give each XML the <filename> of its own image")
        claimed[image] = xml
        records.append(Annotated(str(image), w, h, boxes, names, image_id=xml.stem))
    negatives = [Annotated(str(image_dir / n), 0, 0, [], [], image_id=str(image_dir / n))
                 for n in image_names(image_dir) if image_dir / n not in claimed]
    return records, orphans, negatives


def _parse(xml: Path) -> ET.Element:
    try:
        return ET.parse(xml).getroot()
    except ET.ParseError as e:
        raise CnnlabError(f"{xml}: not valid XML ({e})") from None
    except OSError as e:
        raise CnnlabError(f"{xml}: cannot read ({e.strerror or e.__class__.__name__})") from None


def _parse_voc(xml: Path) -> tuple[str, int, int, list[list[float]], list[str]]:
    """(<filename>, <size> width and height (0: not given), boxes in 0-based pixel edges, <name>s)."""
    doc = _parse(xml)
    objects = doc.findall("object")
    if len(objects) > MAX_BOXES_PER_IMAGE:
        raise too_many_boxes(str(xml), len(objects))
    size = doc.find("size")
    w, h = (_pixels(size.findtext(k)) if size is not None else 0 for k in ("width", "height"))
    boxes, names = [], []
    for n, o in enumerate(objects, 1):
        name = (o.findtext("name") or "").strip()
        if not name:
            raise CnnlabError(f"{xml}: <object> {n} has no <name>; expected the class name")
        try:
            b = o.find("bndbox")
            # VOC pixels are 1-based and inclusive: (xmin - 1, ymin - 1, xmax, ymax) in 0-based edges
            x0, y0, x1, y1 = (float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            if not all(map(math.isfinite, (x0, y0, x1, y1))):
                raise ValueError
            boxes.append([x0 - 1, y0 - 1, x1, y1])
        except (AttributeError, TypeError, ValueError):
            raise CnnlabError(f"{xml}: <object> {n} ({name}): expected <bndbox> with numeric xmin, ymin, xmax, "
                              f"ymax") from None
        names.append(name)
    return (doc.findtext("filename") or "").strip(), w, h, boxes, names


def _pixels(text: str | None) -> int:
    """A <size> value in whole pixels, 0 when absent or not a positive number (the image says)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return 0
    return int(value) if math.isfinite(value) and value >= 1 and value == int(value) else 0
