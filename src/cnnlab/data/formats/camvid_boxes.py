"""CamVid label maps -> detection boxes for Car, Pedestrian and Bicyclist (approximate).

CamVid has no instance annotations, only a class per pixel. Each connected region (8-connected)
of one class with at least ``min_area`` pixels becomes a box around it. This is an approximation:
touching cars or a crowd merge into one box, an object cut by a pole splits into two, and far
small objects are dropped. Good enough for a baseline that later work can improve, not for
comparison with published detection numbers.

    python -m cnnlab.data.formats.camvid_boxes ../shared/data/camvid runs/camvid-boxes [--min-area 150]
    cnnlab train --task detect --data runs/camvid-boxes/instances_train.json --image-size 320

writes ``instances_train.json`` and ``instances_val.json`` (COCO layout; image file names point
at the CamVid images in place, nothing is copied).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from cnnlab.errors import CnnlabError
from cnnlab.files import write_text

CAMVID_IDS = {"Car": 8, "Pedestrian": 9, "Bicyclist": 10}  # class id in the 11-class label maps


def label_map_boxes(labels: np.ndarray, min_area: int) -> list[tuple[str, list[float], int]]:
    """(class, [x, y, w, h], area) for each connected region of each class in a (H, W) label map."""
    from scipy import ndimage

    out = []
    for name, cid in CAMVID_IDS.items():
        regions, n = ndimage.label(labels == cid, structure=np.ones((3, 3)))
        if not n:
            continue
        areas = np.bincount(regions.ravel(), minlength=n + 1)
        for k, sl in enumerate(ndimage.find_objects(regions), start=1):
            if areas[k] >= min_area:
                ys, xs = sl
                out.append((name, [float(xs.start), float(ys.start), float(xs.stop - xs.start),
                                   float(ys.stop - ys.start)], int(areas[k])))
    return out


def convert(root: str | Path, out: str | Path, min_area: int = 150) -> dict[str, Path]:
    """Write COCO files for the train and val splits of the CamVid folder ``root`` (SegNet layout)."""
    root, out = Path(root), Path(out)
    written = {}
    for split in ("train", "val"):
        images, annots = root / split, root / f"{split}annot"
        if not images.is_dir() or not annots.is_dir():
            raise CnnlabError(f"{root}: expected {split}/ and {split}annot/ (CamVid, SegNet layout)")
        doc = {"images": [], "annotations": [],
               "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CAMVID_IDS)]}
        for i, path in enumerate(sorted(images.glob("*.png")), start=1):
            labels = np.asarray(Image.open(annots / path.name))
            h, w = labels.shape
            doc["images"].append({"id": i, "file_name": str(path.resolve()), "width": w, "height": h})
            for name, box, area in label_map_boxes(labels, min_area):
                doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": i, "bbox": box,
                                           "category_id": list(CAMVID_IDS).index(name) + 1, "area": area,
                                           "iscrowd": 0})
        out.mkdir(parents=True, exist_ok=True)
        written[split] = out / f"instances_{split}.json"
        write_text(written[split], json.dumps(doc))
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("camvid", help="the CamVid folder (train/, trainannot/, val/, valannot/)")
    p.add_argument("out", help="folder for instances_train.json and instances_val.json")
    p.add_argument("--min-area", type=int, default=150, help="smallest region kept, pixels")
    a = p.parse_args(argv)
    for path in convert(a.camvid, a.out, a.min_area).values():
        doc = json.loads(path.read_text())
        counts = {c["name"]: sum(x["category_id"] == c["id"] for x in doc["annotations"]) for c in doc["categories"]}
        print(f"{path}: {len(doc['images'])} images, boxes {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
