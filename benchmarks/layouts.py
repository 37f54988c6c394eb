"""One detection set in three layouts: BCCD as a Pascal VOC tree, as labelImg XML beside the images,
and as TensorFlow-tutorial box CSVs; ``load_dataset`` must give the same splits, classes and tensors.

    python benchmarks/layouts.py                           # the equality check (~1 min)
    python benchmarks/layouts.py --train                   # also 1 epoch of the bccd recipe per layout
    python benchmarks/layouts.py --data PATH/TO/BCCD       # default: ../shared/data/bccd

BCCD (``Annotations/`` + ``JPEGImages/`` + ``ImageSets/Main``) is read in place; the copies are
links and generated files under a temporary folder:

* **labelImg**: ``train/``, ``valid/``, ``test/`` (Roboflow's "Pascal VOC" export), each photo's
  ``.xml`` linked beside it: the split folders are the splits;
* **CSV**: ``train_labels.csv``, ``valid_labels.csv``, ``test_labels.csv`` with the columns
  ``filename,width,height,class,xmin,ymin,xmax,ymax`` and the photos linked in ``images/<split>/``.
  VOC's 1-based inclusive pixels are written as pixel edges (xmin - 1, ymin - 1, xmax, ymax), the
  coordinates a box CSV holds.

Printed: per layout the layout ``detection_layout`` names, images and boxes per split and class,
and whether images, boxes and labels equal the VOC tree's. ``--train`` trains the bccd recipe for
one epoch per layout (deterministic, the same seed) and prints test mAP@.5: about 5 minutes a
layout on 2 quiet CPU cores, which is why it is a flag.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

import cnnlab
from cnnlab.data import load_dataset
from cnnlab.data.formats.boxes import detection_layout

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bccd import default_data  # noqa: E402  (one place that finds BCCD)

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "bccd.yaml"
SPLITS = {"train": "train", "val": "valid", "test": "test"}  # split -> the export's folder name


def csv_rows(xml: Path) -> list[str]:
    """The box rows of one VOC XML, in pixel edges."""
    doc = ET.parse(xml).getroot()
    name, size = doc.findtext("filename"), doc.find("size")
    w, h = size.findtext("width"), size.findtext("height")
    rows = []
    for o in doc.iter("object"):
        b = o.find("bndbox")
        x0, y0, x1, y1 = (float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        rows.append(f"{name},{w},{h},{o.findtext('name').strip()},{x0 - 1:g},{y0 - 1:g},{x1:g},{y1:g}")
    return rows


def rearrange(voc: Path, out: Path) -> dict[str, Path]:
    """The labelImg and CSV copies of the VOC tree at ``voc`` under ``out`` (links and CSV files)."""
    flat, tables = out / "labelimg", out / "csv"
    for split, folder in SPLITS.items():
        ids = (voc / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
        (flat / folder).mkdir(parents=True)
        (tables / "images" / folder).mkdir(parents=True)
        rows = ["filename,width,height,class,xmin,ymin,xmax,ymax"]
        for i in ids:
            xml = voc / "Annotations" / f"{i}.xml"
            image = voc / "JPEGImages" / ET.parse(xml).getroot().findtext("filename")
            (flat / folder / image.name).symlink_to(image)
            (flat / folder / xml.name).symlink_to(xml)
            (tables / "images" / folder / image.name).symlink_to(image)
            rows += csv_rows(xml)
        (tables / f"{folder}_labels.csv").write_text("\n".join(rows) + "\n")
    return {"VOC tree": voc, "labelImg": flat, "CSV": tables}


def by_name(data) -> dict[str, tuple]:
    """File name -> (image, boxes, labels): layouts may order a split differently."""
    return {Path(f).name: (data.images[i], t["boxes"], t["labels"]) for i, (f, t) in enumerate(zip(data.files, data.targets))}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(all(torch.equal(x, y) for x, y in zip(a[k], b[k])) for k in a)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="the BCCD folder (VOC layout)")
    p.add_argument("--train", action="store_true", help="also train 1 epoch of the bccd recipe per layout (~5 min each)")
    a = p.parse_args(argv)
    print(f"command: {' '.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}")
    voc = a.data or default_data()
    with tempfile.TemporaryDirectory(prefix="cnnlab-layouts-") as tmp:
        layouts = rearrange(voc, Path(tmp))
        equal = True
        for split in SPLITS:
            reference = None
            for name, path in layouts.items():
                start = time.perf_counter()
                with warnings.catch_warnings(record=True) as said:
                    warnings.simplefilter("always")
                    data = load_dataset(path, split, task="detect")
                seconds = time.perf_counter() - start
                if split == "train":
                    print(f"{name:9s} {path.name}: {detection_layout(path)}")
                counts = ", ".join(f"{c} {n}" for c, n in data.box_counts().items())
                line = f"  {split:5s} {name:9s} {len(data):3d} images, boxes: {counts}; read in {seconds:.1f} s"
                if said:
                    line += f"; {len(said)} warnings: {'; '.join(str(w.message)[:80] for w in said)}"
                if reference is None:
                    reference = (data.classes, by_name(data))
                else:
                    ok = data.classes == reference[0] and same(by_name(data), reference[1])
                    equal &= ok
                    line += f"; classes, images, boxes, labels equal to the VOC tree's: {ok}"
                print(line)
                del data
        print(f"all three layouts identical: {equal}")
        if a.train:
            (Path(tmp) / "runs").mkdir()
            for name, path in layouts.items():
                start = time.perf_counter()
                run = cnnlab.train(config=RECIPE, log=None, overrides=[
                    f"data={path}", f"out={Path(tmp) / 'runs' / name.replace(' ', '_')}", "epochs=1",
                    "deterministic=true", "plots=false"])
                print(f"{name:9s} 1 epoch: test mAP@.5 {run.test['map50']:.4f}, mAP {run.test['map']:.4f} "
                      f"({time.perf_counter() - start:.0f} s)")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
