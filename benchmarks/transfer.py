"""Defaults that transfer: each task's default on a sibling dataset it was not tuned on, beside the
named recipe (and, for classification, beside the lecture's CNN the old default trained).

    python benchmarks/transfer.py                          # every sibling, the recipes' epochs
    python benchmarks/transfer.py --only cifar5 cells      # some of them
    python benchmarks/transfer.py --epochs 3               # every run shortened alike (said in the table)

The siblings, built from ../shared/data in a temporary folder (links to the photos, new labels):

    bccd-resplit   BCCD's 364 photos drawn into train/val/test anew (seed 1), 205/87/72 as the official lists
    camvid6        CamVid with 6 classes (sky, structure, road, pavement, tree, movers), void ignored
    flickr-resplit Flickr8k's 991 captioned photos drawn into train/dev/test anew (seed 1)
    cifar5         CIFAR-10's first 5 classes, 1,000 training photos each, all 5,000 of their test photos
    cells          BCCD's labelled cells cropped into class folders (RBC, WBC, Platelets): real photos to classify
    flickr-scenes  Flickr8k photos in 5 classes by what their human captions say (dog, water, bike, snow,
                   ball sports): at least 3 of 5 captions name the class, at most 1 names another; Flickr8k's
                   own train/dev/test lists; everyday photos, a harder sibling for the photo recipe

"default" is `cnnlab.train(data=SIBLING)`: no recipe, no model (engine/defaults.py picks and adapts the
task's real-data recipe); "recipe" is `cnnlab.train(config=NAME, data=SIBLING)`. Both score the sibling's
test split (val for CamVid, which has no test split here) with the checkpoint chosen on val.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

import cnnlab

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CAMVID6 = ["sky", "structure", "road", "pavement", "tree", "movers"]
CAMVID_TO_6 = [0, 1, 1, 2, 3, 4, 1, 1, 5, 5, 5]  # CamVid's 11 ids -> 6; 11 (void) -> 255 (ignored)
SCENES = {"dog": {"dog", "dogs", "puppy"}, "water": {"water", "pool", "ocean", "lake", "river", "swimming", "waves",
                                                      "surf", "surfer", "beach"},
          "bike": {"bike", "bicycle", "bikes", "biker", "bicyclist", "cyclist"},
          "snow": {"snow", "snowy", "skier", "skiing", "snowboarder"},
          "ball": {"soccer", "football", "basketball", "baseball", "rugby"}}
LECTURE_ROW = ("cells", "flickr-scenes")  # photo siblings: also the lecture's CNN, the old default


# ---------------------------------------------------------------------------------------- siblings
def bccd_resplit(out: Path) -> Path:
    src = SHARED / "bccd"
    for sub in ("Annotations", "JPEGImages"):
        (out / sub).symlink_to(src / sub)
    stems = sorted(p.stem for p in (src / "Annotations").glob("*.xml"))
    random.Random(1).shuffle(stems)
    (out / "ImageSets" / "Main").mkdir(parents=True)
    for split, part in (("train", stems[:205]), ("val", stems[205:292]), ("test", stems[292:])):
        (out / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(sorted(part)) + "\n")
    return out


def camvid6(out: Path) -> Path:
    src = SHARED / "camvid"
    lut = np.full(256, 255, np.uint8)
    lut[:11] = CAMVID_TO_6
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True)
        (out / "masks" / split).mkdir(parents=True)
        for image in sorted((src / split).glob("*.png")):
            (out / "images" / split / image.name).symlink_to(image)
            mask = np.asarray(Image.open(src / f"{split}annot" / image.name))
            Image.fromarray(lut[mask]).save(out / "masks" / split / image.name)
    (out / "classes.txt").write_text("\n".join(CAMVID6) + "\nignore 255\n")
    return out


def flickr_resplit(out: Path) -> Path:
    src = SHARED / "flickr8k"
    (out / "Images").symlink_to(src / "Images")
    (out / "captions.txt").symlink_to(src / "captions.txt")
    with open(src / "captions.txt", newline="", encoding="utf-8") as f:
        photos = sorted({row["image"] for row in csv.DictReader(f)})
    old = {s: (src / "splits" / f"Flickr_8k.{s}Images.txt").read_text().split() for s in ("train", "dev", "test")}
    listed = sorted(set().union(*old.values()) & set(photos))
    random.Random(1).shuffle(listed)
    n_train, n_dev = len(set(old["train"]) & set(photos)), len(set(old["dev"]) & set(photos))
    (out / "splits").mkdir()
    for split, part in (("train", listed[:n_train]), ("dev", listed[n_train:n_train + n_dev]),
                        ("test", listed[n_train + n_dev:])):
        (out / "splits" / f"Flickr_8k.{split}Images.txt").write_text("\n".join(part) + "\n")
    return out


def cifar5(out: Path, per_class: int = 1000) -> Path:
    src = SHARED / "cifar10"
    for split, n in (("train", per_class), ("test", None)):
        for cls in sorted(p.name for p in (src / split).iterdir())[:5]:
            (out / split / cls).mkdir(parents=True)
            for image in sorted((src / split / cls).iterdir())[:n]:
                (out / split / cls / image.name).symlink_to(image)
    return out


def cells(out: Path, side: int = 96) -> Path:
    """Each labelled BCCD cell cropped (a margin of 10%) and resized to ``side``, into class folders;
    the official train/val/test lists become the splits, so no photo's cells are in two splits."""
    src = SHARED / "bccd"
    for split in ("train", "val", "test"):
        for stem in (src / "ImageSets" / "Main" / f"{split}.txt").read_text().split():
            photo = Image.open(src / "JPEGImages" / f"{stem}.jpg").convert("RGB")
            for k, obj in enumerate(ET.parse(src / "Annotations" / f"{stem}.xml").getroot().iter("object")):
                box = [float(obj.find("bndbox").find(t).text) for t in ("xmin", "ymin", "xmax", "ymax")]
                w, h = box[2] - box[0], box[3] - box[1]
                if w < 4 or h < 4:
                    continue
                crop = photo.crop((box[0] - 0.1 * w, box[1] - 0.1 * h, box[2] + 0.1 * w, box[3] + 0.1 * h))
                folder = out / split / obj.find("name").text.strip()
                folder.mkdir(parents=True, exist_ok=True)
                crop.resize((side, side), Image.BILINEAR).save(folder / f"{stem}_{k}.png")
    return out


def flickr_scenes(out: Path) -> Path:
    src = SHARED / "flickr8k"
    captions: dict[str, list[set]] = {}
    with open(src / "captions.txt", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            captions.setdefault(row["image"], []).append(set(re.findall(r"[a-z]+", row["caption"].lower())))
    lists = {s: set((src / "splits" / f"Flickr_8k.{s}Images.txt").read_text().split()) for s in ("dev", "test")}
    for photo, said in sorted(captions.items()):
        votes = {scene: sum(bool(words & c) for c in said) for scene, words in SCENES.items()}
        named = [scene for scene, n in votes.items() if n >= 3]
        if len(named) != 1 or sum(n >= 2 for n in votes.values()) != 1:
            continue  # no scene, or two of them: not one class
        split = "val" if photo in lists["dev"] else "test" if photo in lists["test"] else "train"
        (out / split / named[0]).mkdir(parents=True, exist_ok=True)
        (out / split / named[0] / photo).symlink_to(src / "Images" / photo)
    return out


SIBLINGS = {  # name -> (builder, named recipe, the metric printed, the split scored)
    "bccd-resplit": (bccd_resplit, "bccd", "map50", "test"),
    "camvid6": (camvid6, "camvid", "miou", "val"),
    "flickr-resplit": (flickr_resplit, "flickr8k", "bleu4", "test"),
    "cifar5": (cifar5, "cifar10", "top1", "test"),
    "cells": (cells, "photos", "top1", "test"),
    "flickr-scenes": (flickr_scenes, "photos", "top1", "test"),
}


# ---------------------------------------------------------------------------------------- runs
def run(label: str, data: Path, out: Path, metric: str, split: str, **options) -> dict:
    t0 = time.perf_counter()
    result = cnnlab.train(data=str(data), out=str(out), log=None, plots=False, exist_ok=True, **options)
    seconds = time.perf_counter() - t0
    score = (result.test or {}).get(metric)
    if score is None:  # no test split: the best val epoch's score
        score = cnnlab.evaluate(str(Path(result.out) / "best.pt"), split=split)[metric]
    cfg = json.loads((Path(result.out) / "config.json").read_text())
    print(f"  {label:<8} {cfg['model']:<20} {cfg['epochs']:>3} epochs  image_size {cfg['image_size']:<4} "
          f"{metric} {score:.4f}  ({seconds / 60:.1f} min)", flush=True)
    return {"run": label, "model": cfg["model"], "epochs": cfg["epochs"], metric: round(float(score), 4),
            "minutes": round(seconds / 60, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", choices=list(SIBLINGS), help="these siblings only")
    p.add_argument("--epochs", type=int, help="train every run this many epochs (a shortened comparison)")
    p.add_argument("--work", type=Path, help="build the siblings and keep the runs here (default: a temp folder)")
    a = p.parse_args(argv)
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} is absent: the siblings are built from it")
    print(f"command: {' '.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}")
    print(f"cpu: {os.cpu_count()} cores, torch threads {__import__('torch').get_num_threads()}")
    work = a.work or Path(tempfile.mkdtemp(prefix="cnnlab-transfer-"))
    extra = {"epochs": a.epochs} if a.epochs else {}
    (work / "runs").mkdir(parents=True, exist_ok=True)
    for name in a.only or SIBLINGS:
        build, recipe, metric, split = SIBLINGS[name]
        data = work / name
        if not data.exists():
            data.mkdir(parents=True)
            build(data)
        print(f"{name}: default vs the {recipe} recipe ({metric} on {split})", flush=True)
        run("default", data, work / "runs" / f"{name}-default", metric, split, **extra)
        run("recipe", data, work / "runs" / f"{name}-recipe", metric, split, config=recipe, **extra)
        if name in LECTURE_ROW:  # what the default was before: the lecture's CNN from scratch
            run("lecture", data, work / "runs" / f"{name}-lecture", metric, split, model="lecture_cnn",
                image_size=32, **extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
