"""`cnnlab data info DATA --task detect`: boxes per class, a box-size histogram, degenerate boxes by file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnlab import api
from cnnlab.data import load_dataset
from cnnlab.data.detection import Annotated, box_faults, check_annotations, degenerate_boxes
from cnnlab.data.info import box_lines, describe

BCCD = Path("/work/shared/data/bccd")


def _voc(root: Path, images: dict[str, tuple[int, int, list[tuple]]]) -> Path:
    """A VOC folder: name -> (width, height, [(class, xmin, ymin, xmax, ymax), ...]) in VOC's 1-based pixels."""
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for name, (w, h, objects) in images.items():
        Image.new("RGB", (w, h), (200, 120, 40)).save(root / "JPEGImages" / f"{name}.png")
        objs = "".join(f"<object><name>{c}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
                       f"<ymax>{y1}</ymax></bndbox></object>" for c, x0, y0, x1, y1 in objects)
        (root / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.png</filename><size><width>{w}</width><height>{h}</height></size>"
            f"{objs}</annotation>")
    return root


@pytest.fixture
def voc(tmp_path) -> Path:
    return _voc(tmp_path / "voc", {
        "a": (64, 48, [("cat", 1, 1, 16, 16),      # 16 x 16: sqrt(area) 16
                       ("dog", 11, 5, 50, 44)]),   # 40 x 40
        "b": (128, 96, [("dog", 11, 3, 110, 92),   # 100 x 90: sqrt(area) 94.9, COCO medium
                        ("cat", 30, 30, 30, 30),   # a point: one pixel after the 1-based conversion
                        ("cat", 50, 10, 40, 20),   # xmax < xmin: negative width
                        ("dog", 200, 10, 220, 20)]),  # right of the 128-pixel-wide image
        "c": (64, 48, [("cat", 5, 21, 30, 19)]),   # ymax < ymin - 1: negative height; c becomes a negative
        "d": (64, 48, [("cat", 3, 3, 7, 7)]),      # 5 x 5: under 8
    })


# ----------------------------------------------------------------------------- the checks


def test_box_faults_say_why_each_box_is_dropped():
    boxes = torch.tensor([[0, 0, 10, 10], [5, 5, 5, 9], [5, 9, 3, 12], [70, 0, 80, 5], [2, 2, 3, 3],
                          [63.5, 0, 70, 10]], dtype=torch.float32)
    inside, keep, why = box_faults(boxes, 64, 48)
    assert keep.tolist() == [True, False, False, False, False, False]
    assert why == ["zero width", "negative width", "outside the image", "width 1 pixel, height 1 pixel",
                   "a sliver inside the image"]
    assert inside[3].tolist() == [64, 0, 64, 5]


def test_report_and_degenerate_boxes_agree():
    records = [Annotated("x.png", 64, 48, [[0, 0, 10, 10], [4, 4, 4, 8]], ["cat", "cat"]),
               Annotated("y.png", 64, 48, [[90, 0, 99, 9]], ["dog"])]
    targets, report = check_annotations(records, {"cat": 1, "dog": 2}, "src")
    assert [len(t["boxes"]) for t in targets] == [1, 0]
    assert any("dropped 2 boxes of zero or negative area" in line for line in report)
    assert degenerate_boxes(records) == {"x.png": ["cat (4, 4, 4, 8): zero width"],
                                         "y.png": ["dog (90, 0, 99, 9): outside the image"]}


# ----------------------------------------------------------------------------- data info


def test_info_histogram_in_source_pixels_and_degenerate_by_file(voc):
    info = api.data_info(str(voc), "train", task="detect", val_fraction=0.0)
    assert info["class_counts"] == {"cat": 2, "dog": 2}  # kept boxes only
    assert info["image_shape"] == (3, 320, 320)  # mixed sizes: resized, yet sizes are counted on disk
    assert info["box_sizes"] == {"<8": 1, "8-16": 0, "16-32": 1, "32-64": 1, "64-128": 1, "128-256": 0,
                                 ">=256": 0}
    assert info["box_sizes_coco"] == {"small": 2, "medium": 2, "large": 0}
    bad = {Path(f).name: v for f, v in info["degenerate"].items()}
    assert bad == {"b.png": ["cat (29, 29, 30, 30): width 1 pixel, height 1 pixel",
                             "cat (49, 9, 40, 20): negative width",
                             "dog (199, 9, 220, 20): outside the image"],
                   "c.png": ["cat (4, 20, 30, 19): negative height"]}
    json.dumps(info)  # --json prints it
    text = "\n".join(info["report"])
    assert "dropped 4 boxes of zero or negative area" in text and "1 images without boxes" in text
    assert "box sizes, sqrt(area) in the images' own pixels (4 boxes):" in text
    assert "degenerate boxes, dropped: 4 in 2 files" in text
    assert any(line.strip().startswith(str(voc / "JPEGImages" / "b.png")) for line in info["report"])


def test_cli_prints_histogram_and_degenerate_files(voc, tmp_path, capsys):
    from cnnlab.cli import main

    assert main(["data", "info", str(voc), "--task", "detect", "--grid", str(tmp_path / "grid.png")]) == 0
    out = capsys.readouterr().out
    assert "box sizes, sqrt(area)" in out and "COCO sizes: small (<32^2)" in out
    assert "c.png: cat (4, 20, 30, 19): negative height" in out
    assert (tmp_path / "grid.png").is_file()


def test_clean_data_says_none(tmp_path):
    root = _voc(tmp_path / "clean", {"a": (64, 48, [("cat", 1, 1, 40, 40)])})
    data = load_dataset(str(root), "train", task="detect", val_fraction=0.0)
    info = describe(data)
    assert info["degenerate"] == {} and "degenerate boxes: none" in box_lines(info)
    assert info["box_sizes"]["32-64"] == 1


def test_subset_keeps_sizes_and_degenerate_of_its_files(voc):
    data = load_dataset(str(voc), "train", task="detect", val_fraction=0.0)
    assert data.source_sizes == [(48, 64), (96, 128), (48, 64), (48, 64)]
    part = data.subset(torch.tensor([1, 3]))
    assert part.source_sizes == [(96, 128), (48, 64)]
    assert [Path(f).name for f in part.degenerate] == ["b.png"]


# ----------------------------------------------------------------------------- the real BCCD


@pytest.mark.skipif(not BCCD.is_dir(), reason=f"BCCD not found at {BCCD}")
@pytest.mark.parametrize("split, image, box", [("train", "BloodImage_00343.jpg", "180, 328, 181, 329"),
                                              ("val", "BloodImage_00338.jpg", "503, 336, 504, 337"),
                                              ("test", None, None)])
def test_bccd_degenerate_point_boxes(split, image, box):
    """BCCD's two known bad boxes are points (xmin == xmax, ymin == ymax), one in train, one in val."""
    info = api.data_info(str(BCCD), split, task="detect")
    assert set(info["class_counts"]) == {"Platelets", "RBC", "WBC"}
    bad = {Path(f).name: v for f, v in info["degenerate"].items()}
    if image is None:
        assert bad == {}
        return
    assert list(bad) == [image] and bad[image] == [f"RBC ({box}): width 1 pixel, height 1 pixel"]
    assert sum(info["box_sizes"].values()) == sum(info["class_counts"].values())
    assert info["box_sizes"]["64-128"] > info["box_sizes"]["16-32"]  # blood cells: mostly 64-128 pixels across
