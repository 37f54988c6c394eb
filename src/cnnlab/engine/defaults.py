"""The default for a user's own data: the task's best real-data recipe, adapted to the data.

With no ``--config`` and no model chosen (``--model``, ``--model-args``, ``--backbone``), ``train`` on a dataset on disk starts from the recipe its
task ships for real photos, pretrained backbone included, instead of the lecture's small model
trained from scratch (detection mAP@.5 0.01 where the BCCD recipe gets 0.92):

    task      recipe          adapted to the data
    detect    bccd            the detector's input size (and anchors) to the photos' size, epochs
    segment   camvid          the training image size to the photos' shorter side, epochs
    caption   flickr8k        epochs
    classify  photos          image size; images of at most 64 px: cifar10 (colour), fashion-mnist (gray)

Epochs keep the recipe's number of optimizer steps (within 1/3x..3x its epochs), so a bigger
dataset trains fewer epochs of more steps; a batch larger than a quarter of the training images
shrinks, with the learning rate scaled by the same factor. Every choice comes back with its
reason, and ``train`` prints them first. Built-in teaching sets keep the lecture's small models.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Callable

from cnnlab.engine.config import recipe_values

RECIPE = {"detect": "bccd", "segment": "camvid", "caption": "flickr8k", "classify": "photos"}
SMALL_RECIPE = {1: "fashion-mnist", 3: "cifar10"}  # classification of small images, by channels
SMALL_SIDE = 64            # pixels: classification images at most this small train from scratch
RECIPE_IMAGES = {"bccd": 205, "camvid": 367, "flickr8k": 753, "photos": 1000,  # training images
                 "cifar10": 49_000, "fashion-mnist": 57_000}                  # each recipe was set for
NOT_THE_RECIPES = ("data", "out", "task", "val_fraction", "images")  # the recipe's data, not the user's
TRAIN_SHARE = 0.7          # of the images found, the share that trains when the data has no split lists
SURVEY_HEADERS = 64        # image headers read to learn the images' size
MAX_FILES = 1_000_000      # image files counted at most
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
WARMUP_STEPS = 100         # the climb to the peak lr takes at least this many steps (Ultralytics: max(3 epochs, 100))


@dataclass(frozen=True)
class Survey:
    """What a glance at a dataset folder tells: how many images, how big, how many channels."""

    images: int
    side: int       # the median shorter side, pixels
    long_side: int  # the median longer side, pixels
    channels: int   # 1 when every image read is gray, else 3


def survey(root: str | Path) -> Survey | None:
    """Image files under ``root`` counted, and a few headers read (no pixels decoded)."""
    from PIL import Image

    root = Path(root)
    folder = root if root.is_dir() else root.parent  # an annotation file: its folder
    files = []
    for dirpath, dirnames, names in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        files += [os.path.join(dirpath, n) for n in names if n.lower().endswith(IMAGE_SUFFIXES)]
        if len(files) >= MAX_FILES:
            break
    if not files:
        return None
    files.sort()
    sizes, gray = [], True
    for f in files[:: max(1, len(files) // SURVEY_HEADERS)][:SURVEY_HEADERS]:
        try:
            with Image.open(f) as img:
                sizes.append(img.size)
                gray = gray and img.mode in ("1", "L", "I;16", "I")
        except OSError:
            continue
    if not sizes:
        return None
    return Survey(len(files), int(median(min(s) for s in sizes)), int(median(max(s) for s in sizes)),
                  1 if gray else 3)


def default_recipe(task: str, data: str, given: set[str] = frozenset(),
                   count: Callable[[dict], int] | None = None) -> tuple[dict, list[str]]:
    """The config values of ``task``'s real-data recipe adapted to ``data``, and the reasons;
    ``given``: the keys the user set, which are theirs (nothing is adapted or said of them);
    ``count(values)``: the training images the adapted recipe reads (else estimated from the
    images found)."""
    seen = survey(str(data).rpartition(":")[2] if ":" in str(data) and not Path(str(data)).exists() else data)
    name = RECIPE[task]
    if task == "classify" and seen and seen.side <= SMALL_SIDE:
        name = SMALL_RECIPE[seen.channels]
    values = {k: v for k, v in recipe_values(name).items() if k not in NOT_THE_RECIPES}
    why = "pretrained backbone" if values.get("pretrained") else "trained from scratch: small images"
    found = seen and (f"{seen.images // 2} image/mask pairs" if task == "segment" else f"{seen.images} images")
    reasons = [f"no --config or --model: the {name} recipe for {task} ({values['model']}, {why}), adapted "
               f"to {data}" + (f": {found}, median {seen.long_side}x{seen.side} px" if seen else "")]
    values.setdefault("warmup_steps", WARMUP_STEPS)
    if seen:
        reasons += _adapt_size(values, task, seen, given)
        images = seen.images // 2 if task == "segment" else seen.images  # a mask beside each photo
        train = count(values) if count else max(1, round(TRAIN_SHARE * images))
        reasons += _adapt_steps(values, name, train, given)
    return values, reasons


def _adapt_steps(values: dict, name: str, train: int, given: set[str]) -> list[str]:
    """Batch and epochs for ``train`` training images (the recipe's number of steps), in place,
    leaving the ``given`` keys alone; a line of reason for each change."""
    reasons = []
    batch = values.get("batch_size", 128)
    if batch > max(2, train // 4) and not given & {"batch_size", "lr"}:
        new = max(2, train // 4)
        values["lr"] = values.get("lr", 0.0) * new / batch
        values["batch_size"] = new
        reasons.append(f"batch {new} (the recipe's {batch} is over a quarter of the {train:,} training images), "
                       f"lr scaled to {values['lr']:.3g}")
    epochs = values.get("epochs", 8)
    steps = epochs * RECIPE_IMAGES[name] / batch  # the recipe's optimizer steps
    fitted = int(min(3 * epochs, max(max(1, epochs // 3), round(steps * values["batch_size"] / train))))
    if fitted != epochs and "epochs" not in given:
        values["epochs"] = fitted
        reasons.append(f"{fitted} epochs (the recipe's {epochs} were set for {RECIPE_IMAGES[name]:,} training "
                       f"images; {train:,} here, about as many steps)")
    return reasons


def _adapt_size(values: dict, task: str, seen: Survey, given: set[str]) -> list[str]:
    """The input size fitted to the photos (never enlarging them), in place; the reasons."""
    reasons = []
    if task == "detect" and "model_args" not in given:
        args = dict(values.get("model_args", {}))
        low, high = args.get("min_size", 800), args.get("max_size", 1333)
        if seen.long_side < high:  # never enlarge photos beyond their own size
            scale = seen.long_side / high
            args["min_size"], args["max_size"] = max(32, round(low * scale)), seen.long_side
            if "anchor_sizes" in args:
                args["anchor_sizes"] = [[max(4, round(a * scale)) for a in level] for level in args["anchor_sizes"]]
            reasons.append(f"detector input {args['max_size']}x{args['min_size']} (the photos' size; the recipe's "
                           f"{high}x{low} would enlarge them), anchors scaled by {scale:.2f}")
        values["model_args"] = args
    if task == "detect":
        values.setdefault("clip_grad", 10.0)  # many classes, another lr per image: keep steps bounded
    elif task in ("segment", "classify") and values.get("image_size") and seen.side < values["image_size"] \
            and "image_size" not in given:
        reasons.append(f"image size {seen.side} (the photos' shorter side; the recipe's {values['image_size']} "
                       f"would enlarge them)")
        values["image_size"] = seen.side
    return reasons
