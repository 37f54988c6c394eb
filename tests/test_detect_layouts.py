"""Detection data in the layouts users bring (issue 22): Pascal VOC in any arrangement, box CSVs,
Roboflow's COCO and YOLO exports; the same content gives the same splits, boxes and classes in
each, and every malformed file is one CnnlabError naming the file, the entry and the field."""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data import load_dataset
from cnnlab.data.detection import MAX_BOXES_PER_IMAGE
from cnnlab.data.formats.boxes import detection_layout
from cnnlab.errors import CnnlabError

SIDE = 32  # pixels: every test image is SIDE x SIDE
CLASSES = ["cat", "dog"]
SPLITS = ("train", "val", "test")


# ----------------------------------------------------------------------------- content
def content(n: int = 20, prefix: str = "img") -> dict[str, list[tuple[str, int, int, int, int]]]:
    """Image name -> its boxes (class, x0, y0, x1, y1) in pixel edges; every 7th image has none."""
    items = {}
    for i in range(n):
        boxes = [] if i % 7 == 6 else [(CLASSES[i % 2], 2 + i % 5, 3 + i % 4, 18 + i % 5, 17 + i % 3)]
        if i % 3 == 0 and boxes:
            boxes.append((CLASSES[(i + 1) % 2], 20, 20, 30, 29))
        items[f"{prefix}{i:02d}.png"] = boxes
    return items


def draw(path: Path, boxes, size=(SIDE, SIDE)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((size[1], size[0], 3), 120, np.uint8)
    for c, x0, y0, x1, y1 in boxes:
        img[y0:y1, x0:x1] = (220, 30, 30) if c == "cat" else (30, 30, 220)
    Image.fromarray(img).save(path)


def voc_xml(name: str, boxes, size=(SIDE, SIDE)) -> str:
    """VOC XML: 1-based inclusive pixels, so xmin = x0 + 1 for a box whose left edge is x0."""
    objs = "".join(f"<object><name>{c}</name><bndbox><xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin><xmax>{x1}</xmax>"
                   f"<ymax>{y1}</ymax></bndbox></object>" for c, x0, y0, x1, y1 in boxes)
    return (f"<annotation><filename>{name}</filename><size><width>{size[0]}</width><height>{size[1]}</height>"
            f"<depth>3</depth></size>{objs}</annotation>")


def write_voc(folder: Path, items: dict, xml_dir: str | None = None, image_dir: str | None = None) -> Path:
    """XMLs in ``folder/xml_dir`` (None: beside the images), images in ``folder/image_dir`` (None: folder).
    Images without boxes get no XML (negatives)."""
    for name, boxes in items.items():
        draw(folder / (image_dir or "") / name, boxes)
        if boxes:
            xml = folder / (xml_dir or image_dir or "") / (Path(name).stem + ".xml")
            xml.parent.mkdir(parents=True, exist_ok=True)
            xml.write_text(voc_xml(name, boxes))
    return folder


def csv_rows(items: dict) -> str:
    rows = ["filename,width,height,class,xmin,ymin,xmax,ymax"]
    for name, boxes in items.items():
        rows += [f"{name},{SIDE},{SIDE},{c},{x0},{y0},{x1},{y1}" for c, x0, y0, x1, y1 in boxes] or \
                [f"{name},{SIDE},{SIDE},,,,,"]
    return "\n".join(rows) + "\n"


def coco_doc(items: dict, ids=(1, 2)) -> dict:
    doc = {"images": [], "annotations": [],
           "categories": [{"id": 0, "name": "animals", "supercategory": "none"}] +  # Roboflow's group entry
                         [{"id": i, "name": c, "supercategory": "animals"} for i, c in zip(ids, CLASSES)]}
    for k, (name, boxes) in enumerate(items.items()):
        doc["images"].append({"id": k, "file_name": name, "width": SIDE, "height": SIDE})
        for c, x0, y0, x1, y1 in boxes:
            doc["annotations"].append({"id": len(doc["annotations"]), "image_id": k, "category_id": ids[CLASSES.index(c)],
                                       "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    return doc


def write_yolo_labels(folder: Path, items: dict) -> None:
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    for name, boxes in items.items():
        draw(folder / "images" / name, boxes)
        lines = [f"{CLASSES.index(c)} {(x0 + x1) / 2 / SIDE} {(y0 + y1) / 2 / SIDE} {(x1 - x0) / SIDE} {(y1 - y0) / SIDE}"
                 for c, x0, y0, x1, y1 in boxes]
        (folder / "labels" / (Path(name).stem + ".txt")).write_text("\n".join(lines))


def load_all(path, **opts) -> dict[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {s: load_dataset(path, s, task="detect", **opts) for s in SPLITS}


def summary(data) -> list[tuple]:
    """(file name, boxes, labels) per image, in file-name order: what must agree across layouts."""
    rows = [(Path(f).name, [[round(v, 3) for v in b] for b in t["boxes"].tolist()], t["labels"].tolist())
            for f, t in zip(data.files, data.targets)]
    return sorted(rows)


def expected(items: dict) -> dict[str, tuple]:
    return {name: ([[float(v) for v in b[1:]] for b in boxes], [CLASSES.index(b[0]) + 1 for b in boxes])
            for name, boxes in items.items()}


# ----------------------------------------------------------------------------- one set, every layout
def flat_layouts(root: Path, items: dict) -> dict[str, Path]:
    """The same images and boxes in every layout without split lists."""
    out = {"voc tree": write_voc(root / "tree", items, "Annotations", "JPEGImages"),
           "labelImg": write_voc(root / "flat", items),
           "images + annotations": write_voc(root / "pair", items, "annotations", "images"),
           "images + xmls": write_voc(root / "xmls", items, "xmls", "images")}
    for name, boxes in items.items():
        draw(root / "csv" / "images" / name, boxes)
    (root / "csv" / "labels.csv").write_text(csv_rows(items))
    out["csv"] = root / "csv"
    write_yolo_labels(root / "yolo", items)
    (root / "yolo" / "classes.txt").write_text("\n".join(CLASSES))
    out["yolo"] = root / "yolo"
    for name, boxes in items.items():
        draw(root / "coco" / name, boxes)
    (root / "coco" / "annotations.json").write_text(json.dumps(coco_doc(items)))
    out["coco"] = root / "coco" / "annotations.json"
    return out


def test_every_layout_without_splits_gives_the_same_train_val_test(tmp_path):
    items = content(20)
    truth = expected(items)
    results = {name: load_all(path) for name, path in flat_layouts(tmp_path, items).items()}
    reference = results["voc tree"]
    seen = []
    for split in SPLITS:
        rows = summary(reference[split])
        assert rows, split
        seen += [r[0] for r in rows]
        for name, (boxes, labels) in ((r[0], r[1:]) for r in rows):
            assert (boxes, labels) == truth[name], name
    assert sorted(seen) == sorted(items)  # train, val and test cover the set, once each
    assert [len(reference[s]) for s in SPLITS] == [16, 2, 2]  # test 0.1 of 20, val 0.1 of the other 18
    for name, data in results.items():
        for split in SPLITS:
            assert data[split].classes == CLASSES, name
            assert summary(data[split]) == summary(reference[split]), (name, split)
            assert torch.equal(data[split].images, reference[split].images), (name, split)


def test_carved_splits_are_stratified_and_recorded(tmp_path):
    items = {f"c{i:02d}.png": [(CLASSES[i % 2], 2, 2, 20, 20)] for i in range(20)}
    root = write_voc(tmp_path / "flat", items)
    data = load_all(root, val_fraction=0.2)
    assert [len(data[s]) for s in SPLITS] == [13, 3, 4]
    assert data["test"].box_counts() == {"cat": 2, "dog": 2}  # each class in proportion
    files = [set(data[s].files) for s in SPLITS]
    assert not (files[0] & files[1] or files[0] & files[2] or files[1] & files[2])
    again = load_dataset(root, "test", task="detect", val_fraction=0.2)
    assert again.files == data["test"].files  # deterministic by seed
    other = load_dataset(root, "test", task="detect", val_fraction=0.2, seed=1)
    assert other.files != data["test"].files


# ----------------------------------------------------------------------------- exports with split folders
def split_layouts(root: Path, parts: dict[str, dict]) -> dict[str, Path]:
    """The same splits as Roboflow exports them (train/ valid/ test/) and as TF's CSVs."""
    folder = {"train": "train", "val": "valid", "test": "test"}
    for split, items in parts.items():
        write_voc(root / "voc" / folder[split], items)
        for name, boxes in items.items():
            draw(root / "coco" / folder[split] / name, boxes)
            draw(root / "csv" / "images" / folder[split] / name, boxes)
        (root / "coco" / folder[split] / "_annotations.coco.json").write_text(json.dumps(coco_doc(items)))
        (root / "csv" / f"{folder[split]}_labels.csv").write_text(csv_rows(items))
        write_yolo_labels(root / "yolo" / folder[split], items)
    (root / "yolo" / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\ntest: ../test/images\n"
                                             "nc: 2\nnames: ['cat', 'dog']\n")
    return {"voc": root / "voc", "coco": root / "coco", "coco file": root / "coco" / "test" / "_annotations.coco.json",
            "csv": root / "csv", "yolo": root / "yolo"}


def test_split_folders_are_the_splits_in_every_layout(tmp_path):
    items = content(12)
    parts = {"train": dict(list(items.items())[:6]), "val": dict(list(items.items())[6:9]),
             "test": dict(list(items.items())[9:])}
    truth = expected(items)
    for name, path in split_layouts(tmp_path, parts).items():
        data = load_all(path)
        for split in SPLITS:
            rows = summary(data[split])
            assert [r[0] for r in rows] == sorted(parts[split]), (name, split)
            assert all((r[1], r[2]) == truth[r[0]] for r in rows), (name, split)
            assert data[split].classes == CLASSES, name


def test_detection_layout_names_each_layout_and_nothing_else(tmp_path):
    items = content(4)
    names = {k: detection_layout(p) for k, p in flat_layouts(tmp_path / "flat", items).items()}
    assert names == {"voc tree": "Pascal VOC (Annotations/*.xml)", "labelImg": "Pascal VOC XML beside the images",
                     "images + annotations": "Pascal VOC (annotations/*.xml, images/)",
                     "images + xmls": "Pascal VOC (xmls/*.xml, images/)", "csv": "box CSV (labels.csv)",
                     "yolo": "YOLO (images/ + labels/)", "coco": "COCO JSON (annotations.json)"}
    parts = {"train": items, "val": items, "test": items}
    names = {k: detection_layout(p) for k, p in split_layouts(tmp_path / "split", parts).items()}
    assert names == {"voc": "Pascal VOC XML beside the images in train/, valid/, test/",
                     "coco": "COCO JSON (train/_annotations.coco.json)",
                     "coco file": "COCO JSON (_annotations.coco.json)",
                     "csv": "box CSV (train_labels.csv, valid_labels.csv, test_labels.csv)",
                     "yolo": "Ultralytics YAML (data.yaml)"}
    # not detection data: class folders, masks in labels/, captions JSON, a broken data.yaml, nothing
    draw(tmp_path / "classes" / "cat" / "a.png", [])
    draw(tmp_path / "seg" / "images" / "a.png", [])
    draw(tmp_path / "seg" / "labels" / "a.png", [])
    (tmp_path / "captions.json").write_text(json.dumps({"images": [{"filename": "a.png", "sentences": []}]}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "data.yaml").write_bytes(b"train: [\xff")
    (tmp_path / "empty").mkdir()
    for other in ("classes", "seg", "captions.json", "broken", "empty", "nothing-here"):
        assert detection_layout(tmp_path / other) is None, other


# ----------------------------------------------------------------------------- VOC pairing
def test_voc_pairs_by_filename_then_stem_and_counts_what_it_leaves(tmp_path):
    root = tmp_path / "voc"
    draw(root / "JPEGImages" / "photo_a.png", [("cat", 2, 2, 20, 20)])
    draw(root / "JPEGImages" / "b.png", [("dog", 4, 4, 24, 24)])
    draw(root / "JPEGImages" / "neg.png", [])
    (root / "Annotations").mkdir()
    (root / "Annotations" / "a.xml").write_text(voc_xml("photo_a.png", [("cat", 2, 2, 20, 20)]))  # by <filename>
    (root / "Annotations" / "b.xml").write_text(voc_xml("b.jpg", [("dog", 4, 4, 24, 24)]))  # .jpg named: by stem
    (root / "Annotations" / "gone.xml").write_text(voc_xml("gone.png", [("dog", 1, 1, 9, 9)]))
    with pytest.warns(UserWarning, match=r"1 XML files name an image that is not there: gone\.xml"):
        data = load_dataset(root, "train", task="detect", val_fraction=0.0, test_fraction=0.0)
    assert summary(data) == [("b.png", [[4.0, 4.0, 24.0, 24.0]], [2]), ("neg.png", [], []),
                             ("photo_a.png", [[2.0, 2.0, 20.0, 20.0]], [1])]
    report = "\n".join(data.report)
    assert "1 images have no XML, kept as negatives: neg.png" in report and "gone.xml" in report

    for image in (root / "JPEGImages").iterdir():
        image.unlink()
    with pytest.raises(CnnlabError, match=r"Annotations: 3 XML files name an image that is not there: a\.xml"):
        load_dataset(root, "train", task="detect")


def test_voc_lists_are_the_splits_and_missing_test_is_said(tmp_path):
    items = content(10)
    root = write_voc(tmp_path / "voc", items, "Annotations", "JPEGImages")
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("img00\nimg01\nimg02\nimg03\nimg06\n")  # img06: a negative
    (root / "ImageSets" / "Main" / "val.txt").write_text("img04\nimg05\n")
    train = load_dataset(root, "train", task="detect")
    assert [Path(f).name for f in train.files] == ["img00.png", "img01.png", "img02.png", "img03.png", "img06.png"]
    assert len(load_dataset(root, "val", task="detect")) == 2
    with pytest.raises(CnnlabError, match=r"has no test split \(its splits: train, val\); evaluate with --split val"):
        load_dataset(root, "test", task="detect")


def test_the_image_size_wins_over_the_annotated_size(tmp_path):
    root = tmp_path / "voc"
    draw(root / "a.png", [("cat", 18, 18, 30, 30)])  # 32 x 32 on disk
    (root / "a.xml").write_text(voc_xml("a.png", [("cat", 18, 18, 30, 30)], size=(16, 16)))  # says 16 x 16
    draw(root / "b.png", [("dog", 2, 2, 12, 12)])
    (root / "b.xml").write_text(voc_xml("b.png", [("dog", 2, 2, 12, 12)]))
    with pytest.warns(UserWarning, match=r"1 annotations give a size that is not their image's.*a\.png \(annotated "
                                         r"16x16, image 32x32\)"):
        data = load_dataset(root, "train", task="detect", val_fraction=0.0, test_fraction=0.0)
    assert summary(data)[0] == ("a.png", [[18.0, 18.0, 30.0, 30.0]], [1])  # not clipped to 16, not dropped
    assert not any("clipped" in line or "dropped" in line for line in data.report)


# ----------------------------------------------------------------------------- classes refused
def test_no_classes_and_duplicate_names_are_refused(tmp_path):
    root = tmp_path / "empty"
    draw(root / "a.png", [])
    (root / "a.xml").write_text(voc_xml("a.png", []))
    with pytest.raises(CnnlabError, match=r"no classes; a detection set needs at least one class name"):
        load_dataset(root, "train", task="detect")
    (root / "classes.txt").write_text("cat\ndog\ncat\n")
    with pytest.raises(CnnlabError, match=r"classes\.txt: duplicate class names 'cat' \(2x\)"):
        load_dataset(root, "train", task="detect")

    doc = coco_doc(content(3))
    doc["categories"][2]["name"] = "cat"
    path = write_coco_file(tmp_path / "coco", doc, content(3))
    with pytest.raises(CnnlabError, match=r"instances\.json: categories: duplicate class names 'cat' \(2x\)"):
        load_dataset(path, "train", task="detect")


# ----------------------------------------------------------------------------- malformed COCO
def write_coco_file(folder: Path, doc: dict, items: dict) -> Path:
    for name, boxes in items.items():
        draw(folder / name, boxes)
    path = folder / "instances.json"
    path.write_text(json.dumps(doc))
    return path


def _set(doc: dict, where: tuple, value) -> dict:
    *keys, last = where
    target = doc
    for k in keys:
        target = target[k]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


@pytest.mark.parametrize("where, value, message", [
    (("annotations", 0, "bbox"), KeyError, r"annotations\[0\] \(id 0\): field 'bbox': expected \[x, y, width, height\]"),
    (("annotations", 0, "bbox"), [1, 2, 3], r"annotations\[0\] \(id 0\): field 'bbox': .*got list \[1, 2, 3\]"),
    (("annotations", 1, "bbox"), None, r"annotations\[1\] \(id 1\): field 'bbox': .*got NoneType None"),
    (("annotations", 0, "bbox"), "1,2,3,4", r"annotations\[0\] \(id 0\): field 'bbox': .*got str '1,2,3,4'"),
    (("categories", 1, "id"), KeyError, r"categories\[1\]: field 'id': expected an integer or string id, got nothing"),
    (("categories", 2, "name"), KeyError, r"categories\[2\]: field 'name': expected the class name"),
    (("categories", 2, "id"), "dog", r"categories: field 'id' mixes int and str ids"),
    (("images", 1), [1, 2], r"images\[1\]: expected an object, got list"),
    (("annotations", 2), "box", r"annotations\[2\]: expected an object, got str"),
    (("images", 0, "width"), "abc", r"images\[0\] \(id 0\): field 'width': expected a positive whole number"),
    (("images", 2, "height"), 0, r"images\[2\] \(id 2\): field 'height': expected a positive whole number"),
    (("images", 1, "file_name"), 7, r"images\[1\] \(id 1\): field 'file_name': expected a file name, got int 7"),
    (("images", 0, "id"), [0], r"images\[0\]: field 'id': expected an integer or string id, got list \[0\]"),
    (("annotations", 1, "image_id"), 99, r"annotations\[1\]: field 'image_id': int 99 is no image's id "
                                          r"\(1 annotations name unknown images\)"),
    (("annotations", 1, "category_id"), 9, r"unknown category ids 9 in 1 files: img00\.png "
                                           r"\(first at annotations\[1\], field 'category_id'\)"),
    (("images", 2, "id"), 1, r"1 duplicate image ids: 1 \(images\[1\] img01\.png, images\[2\] img02\.png\)"),
])
def test_malformed_coco_is_one_error_naming_file_entry_and_field(tmp_path, where, value, message):
    items = content(3)
    path = write_coco_file(tmp_path, _set(coco_doc(items), where, value), items)
    with pytest.raises(CnnlabError, match=r"instances\.json: " + message):
        load_dataset(path, "train", task="detect")


def test_deeply_nested_and_non_utf8_coco_files(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CnnlabError, match=r"instances\.json: not a COCO file: its JSON nests deeper"):
        load_dataset(path, "train", task="detect")
    path.write_bytes(json.dumps(coco_doc({})).encode().replace(b'"animals"', b'"anim\xe4ls"', 1))
    with pytest.raises(CnnlabError, match=r"instances\.json: the COCO JSON file is not UTF-8 text \(byte 0xe4"):
        load_dataset(path, "train", task="detect")


def test_coco_images_absent_on_disk_are_counted_and_all_absent_is_an_error(tmp_path):
    items = content(6)
    path = write_coco_file(tmp_path, coco_doc(items), items)
    (tmp_path / "img01.png").unlink()
    (tmp_path / "img04.png").unlink()
    with pytest.warns(UserWarning, match=r"instances\.json: 2 of 6 image files not found .*: img01\.png, img04\.png; "
                                         r"left out with their boxes"):
        data = load_dataset(path, "train", task="detect", val_fraction=0.0, test_fraction=0.0)
    assert len(data) == 4 and any("2 of 6 image files not found" in line for line in data.report)
    assert data.classes == CLASSES  # Roboflow's group category "animals" left out, and said
    assert any("left out 1 categories that only group others and label no box: 'animals'" in line
               for line in data.report)
    for name in items:
        (tmp_path / name).unlink(missing_ok=True)
    with pytest.raises(CnnlabError, match=r"instances\.json: 6 of 6 image files not found"):
        load_dataset(path, "train", task="detect")


# ----------------------------------------------------------------------------- bounds
def test_a_huge_class_count_is_refused_at_once(tmp_path):
    write_yolo_labels(tmp_path / "ds", content(2))
    yaml = tmp_path / "ds" / "my.yaml"
    yaml.write_text("train: images\nnc: 100000000\n")
    start = time.perf_counter()
    with pytest.raises(CnnlabError, match=r"my\.yaml: nc: 100,000,000 classes; at most 100,000 are supported"):
        load_dataset(yaml, "train", task="detect")
    assert time.perf_counter() - start < 5


def test_too_many_boxes_on_one_image_are_refused(tmp_path):
    items = content(2)
    doc = coco_doc(items)
    box = {"image_id": 0, "category_id": 1, "bbox": [1, 1, 5, 5]}
    doc["annotations"] = [dict(box, id=i) for i in range(MAX_BOXES_PER_IMAGE + 1)]
    path = write_coco_file(tmp_path / "coco", doc, items)
    with pytest.raises(CnnlabError, match=r"instances\.json: image id 0 \(img00\.png\): more than 10,000 boxes"):
        load_dataset(path, "train", task="detect")
    rows = "filename,class,xmin,ymin,xmax,ymax\n" + "a.png,cat,1,1,5,5\n" * (MAX_BOXES_PER_IMAGE + 1)
    (tmp_path / "boxes.csv").write_text(rows)
    with pytest.raises(CnnlabError, match=r"boxes\.csv:10002: a\.png: more than 10,000 boxes on one image"):
        load_dataset(tmp_path / "boxes.csv", "train", task="detect")


# ----------------------------------------------------------------------------- CSV strictness
@pytest.mark.parametrize("text, message", [
    ("image,label,x1,y1,x2,y2\na.png,cat,1,2,3\n", r"boxes\.csv:2: 5 fields, but the header names 6"),
    ("file,category,left,top,right,bottom\na.png,cat,1,two,20,20\n", r"boxes\.csv:2: column 'top': expected a number"),
    ("filename,class,xmin,ymin,xmax,ymax\n\na.png,,1,1,20,20\n", r"boxes\.csv:3: column 'class' is empty"),
    ("filename,class,x,y,w,h\na.png,cat,1,1,20,20\n", r"boxes\.csv:1: no column for xmin, ymin, xmax, ymax .*"
                                                      r"accepted names: xmin: xmin/x1/left"),
    ("filename,width,height,class,xmin,ymin,xmax,ymax\na.png,abc,32,cat,1,1,20,20\n",
     r"boxes\.csv:2: column 'width': expected a number"),
    ('filename,class,xmin,ymin,xmax,ymax\n"a.png,cat,1,1,20,20\n', r"boxes\.csv:\d+: not valid CSV"),
])
def test_csv_errors_name_the_line_and_column(tmp_path, text, message):
    draw(tmp_path / "a.png", [])
    (tmp_path / "boxes.csv").write_text(text)
    with pytest.raises(CnnlabError, match=message):
        load_dataset(tmp_path / "boxes.csv", "train", task="detect")


def test_csv_with_any_column_order_reads_the_same_boxes(tmp_path):
    items = content(8)
    for name, boxes in items.items():
        draw(tmp_path / name, boxes)
    rows = ["bottom,right,label,image,top,left"] + [f"{y1},{x1},{c},{Path(n).stem},{y0},{x0}"  # stems: image_id
                                                    for n, bs in items.items() for c, x0, y0, x1, y1 in bs]
    (tmp_path / "boxes.csv").write_text("\n".join(rows))
    data = load_dataset(tmp_path / "boxes.csv", "train", task="detect", val_fraction=0.0, test_fraction=0.0)
    truth = expected(items)
    assert all((r[1], r[2]) == truth[r[0]] for r in summary(data)) and len(data) == 7  # img06 has no rows


# ----------------------------------------------------------------------------- encodings
def test_non_utf8_text_files_are_named(tmp_path):
    write_yolo_labels(tmp_path / "yolo", content(3))
    (tmp_path / "yolo" / "classes.txt").write_bytes(b"cat\nd\xf6g\n")
    with pytest.raises(CnnlabError, match=r"classes\.txt: the class list is not UTF-8 text \(byte 0xf6 at offset 5\)"):
        load_dataset(tmp_path / "yolo", "train", task="detect")
    (tmp_path / "yolo" / "my.yaml").write_bytes(b"train: images\nnames: [cat, d\xf6g]\n")
    with pytest.raises(CnnlabError, match=r"my\.yaml: the dataset YAML is not UTF-8 text \(byte 0xf6"):
        load_dataset(tmp_path / "yolo" / "my.yaml", "train", task="detect")
    (tmp_path / "yolo" / "list.txt").write_bytes(b"images/img00.png\nimages/\xe9.png\n")
    (tmp_path / "yolo" / "my.yaml").write_text("train: list.txt\nnames: [cat, dog]\n")
    with pytest.raises(CnnlabError, match=r"list\.txt: the image list is not UTF-8 text"):
        load_dataset(tmp_path / "yolo" / "my.yaml", "train", task="detect")
    root = write_voc(tmp_path / "voc", content(3))
    (root / "classes.txt").write_bytes(b"c\xe4t\ndog\n")
    with pytest.raises(CnnlabError, match=r"voc/classes\.txt: the class list is not UTF-8 text"):
        load_dataset(root, "train", task="detect")
    (tmp_path / "boxes.csv").write_bytes(b"filename,class,xmin,ymin,xmax,ymax\na.png,c\xe4t,1,1,9,9\n")
    with pytest.raises(CnnlabError, match=r"boxes\.csv: the box table is not UTF-8 text"):
        load_dataset(tmp_path / "boxes.csv", "train", task="detect")
