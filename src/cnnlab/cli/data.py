"""``cnnlab data``: ``list`` the datasets, ``info`` (counts, classes, a sample grid), ``check`` (every
split read as training reads it; exit 0 clean, 1 warnings, 2 errors)."""
from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab.cli.common import json_text


def add(sub) -> argparse.ArgumentParser:
    d = sub.add_parser("data", help="`data info NAME|PATH`: counts, classes, image size, a sample grid PNG; "
                       "`data check NAME|PATH`: every split read as training reads it, problems listed "
                       "(exit 0 clean, 1 warnings, 2 errors)")
    d.add_argument("action", nargs="?", choices=["info", "check", "list"], default="list")
    d.add_argument("spec", nargs="?", metavar="NAME|PATH")
    d.add_argument("--split", default="train", choices=["train", "val", "test"])
    d.add_argument("--grid", help="where to write the sample grid PNG")
    d.add_argument("--skip-bad", action="store_true", help="skip unreadable image files and count them")
    d.add_argument("--images", metavar="DIR", help="the folder of the images a COCO-style annotation file names")
    d.add_argument("--task", default="auto", help="the task whose variant of the data to show (auto: read from "
                   "the data's layout; segment, detect, caption for the built-in shapes scenes)")
    d.add_argument("--json", action="store_true")
    return d


def run(a) -> int:
    from cnnlab.data import list_datasets

    if a.action == "list" or not a.spec:
        for name in list_datasets():
            print(name)
        return 0
    if a.action == "check":
        return _check(a)
    return _info(a)


def _info(a) -> int:
    from cnnlab import api

    info = api.data_info(a.spec, a.split, grid=a.grid or f"{_stem(a.spec)}_{a.split}_grid.png",
                         skip_bad=a.skip_bad, task=a.task, images=a.images)
    if a.json:
        print(json_text(info))
        return 0
    c, h, w = info["image_shape"]
    print(f"{info['data']} / {info['split']}: {info['count']} images of {h}x{w}x{c} (H x W x C), "
          f"{len(info['classes'])} classes")
    shares = info.get("class_shares")  # segmentation: pixels per class
    for name, n in info["class_counts"].items():
        print(f"  {name:>16} {n}" + (f" pixels ({100 * shares[name]:.1f}%)" if shares else ""))
    if info.get("skipped"):
        print(f"skipped {info['skipped']} unreadable files")
    for line in info.get("report", []):  # detection: what the annotation checks changed
        print(line)
    print(f"sample grid: {info['grid']}")
    return 0


def _check(a) -> int:
    from cnnlab import api
    from cnnlab.data.check import report_lines

    report = api.check_data(a.spec, task=a.task, skip_bad=a.skip_bad, images=a.images)
    if a.json:
        print(json_text(report))
    else:
        print("\n".join(report_lines(report)))
    return {"clean": 0, "warnings": 1, "errors": 2}[report["status"]]


def _stem(spec: str) -> str:
    return Path(spec.rpartition(":")[2] or spec).name or "data"  # coco:FILE, camvid:DIR: the file or folder
