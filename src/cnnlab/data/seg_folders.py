"""Segmentation datasets on disk: CamVid (SegNet layout), Pascal VOC, and image + mask folders.

    load_dataset("../shared/data/camvid", "val", task="segment")          # layout detected
    load_dataset("camvid:../shared/data/camvid", "train", task="segment")  # the same, by name
    load_dataset("~/data/roads", "train", task="segment", image_size=180)

Layouts, tried in this order:

* CamVid / SegNet: ``train/`` + ``trainannot/`` (``val/`` + ``valannot/``, ``test/`` + ``testannot/``)
  or pair lists ``train.txt`` ("image mask" per line); 11 classes, id 11 (void) ignored.
* Pascal VOC: ``JPEGImages/``, ``SegmentationClass/`` (palette PNGs, 255 = ignore) and
  ``ImageSets/Segmentation/{train,val}.txt``; 21 classes.
* Generic: ``images/`` and ``masks/`` with the same file stems (optionally split into
  ``images/train``, ``images/val``...) and ``classes.txt``: one class per line, in id order,
  optionally with its colour (``road 128 64 128``); with colours, RGB colour masks are
  converted by palette.

Masks may be index PNGs (gray, 16-bit), palette PNGs (the palette index is the id) or JPEGs:
JPEG blurs edges into in-between values, so a two-class 0/255 JPEG mask is thresholded at 128
and other JPEG masks are mapped to the nearest class colour (``classes.txt`` colours, VOC's
palette); the number of pixels changed is warned about once per split and kept in its ``report``.

A missing val split is carved from train (``val_fraction``, by seed); the generic layout
without split folders also carves ``test_fraction``. Decoded splits are cached as uint8
tensors under ``$CNNLAB_CACHE/segment`` (keyed by the files and their mtimes). Images of one
size keep it (``image_size`` scales the shorter side to it); mixed sizes are resized to
``image_size`` squared (default 256). Masks are resized nearest-neighbour.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.data.folder import IMAGE_EXTENSIONS, cache_root
from cnnlab.data.masks import (IGNORE, SegmentationImages, bad_ids, decode_mask, default_colors, pairs_by_stem,
                               raise_problems)
from cnnlab.data.registry import register_dataset, register_path_loader
from cnnlab.errors import CnnlabError
from cnnlab.images import ImageError, read_image, resize

CAMVID_CLASSES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
                  "Pedestrian", "Bicyclist"]
CAMVID_COLORS = [(128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
                 (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)]
CAMVID_VOID = 11
VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor"]
MIXED_SIZE_DEFAULT = 256  # pixels, square: datasets of mixed image sizes without image_size
CACHE_VERSION = 1
LAYOUTS = ("CamVid/SegNet (train/ + trainannot/, or train.txt pair lists), Pascal VOC (JPEGImages/, "
           "SegmentationClass/, ImageSets/Segmentation/), or images/ + masks/ + classes.txt")


@dataclass
class Layout:
    """A dataset on disk: its official splits as (image, mask) pairs, classes and colours."""

    root: Path
    kind: str  # camvid | voc | folders
    splits: dict[str, list[tuple[Path, Path]]]
    classes: list[str]
    colors: list[tuple[int, int, int]]
    void: int | None = None  # a mask id that means "ignore" (CamVid's 11)
    rgb_masks: bool = False  # RGB colour masks are converted by ``colors``


# ---------------------------------------------------------------------------------------------
# finding the layout
# ---------------------------------------------------------------------------------------------

def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)


def _camvid(root: Path) -> Layout | None:
    splits = {}
    for split in ("train", "val", "test"):
        images, annot, listing = root / split, root / f"{split}annot", root / f"{split}.txt"
        if images.is_dir() and annot.is_dir():
            splits[split] = pairs_by_stem(_files(images), _files(annot), f"{root} ({split}/, {split}annot/)")
        elif listing.is_file():
            splits[split] = _pair_list(root, listing)
    if not splits:
        return None
    return Layout(root, "camvid", splits, CAMVID_CLASSES, CAMVID_COLORS, void=CAMVID_VOID)


def _pair_list(root: Path, listing: Path) -> list[tuple[Path, Path]]:
    """SegNet's ``image mask`` lines; their ``/SegNet/CamVid/`` prefix is replaced by ``root``."""
    pairs, problems = [], []
    for n, line in enumerate(listing.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise CnnlabError(f"{listing}, line {n}: expected 'IMAGE MASK', got {line!r}")
        image, mask = (root / Path(*Path(p).parts[-2:]) for p in parts)
        problems += [f"{listing}:{n}: no such file {p}" for p in (image, mask) if not p.is_file()]
        pairs.append((image, mask))
    raise_problems(problems, str(listing))
    return pairs


def _voc(root: Path) -> Layout | None:
    for base in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (base / "JPEGImages").is_dir() and (base / "SegmentationClass").is_dir():
            break
    else:
        return None
    splits = {}
    for split in ("train", "val", "test"):
        listing = base / "ImageSets" / "Segmentation" / f"{split}.txt"
        if listing.is_file():
            stems = [s.strip() for s in listing.read_text().split() if s.strip()]
            pairs = [(base / "JPEGImages" / f"{s}.jpg", base / "SegmentationClass" / f"{s}.png") for s in stems]
            missing = [f"no such file {p}" for pair in pairs for p in pair if not p.is_file()]
            raise_problems(missing, str(listing))
            splits[split] = pairs
    if not splits:
        masks = _files(base / "SegmentationClass")
        images = [base / "JPEGImages" / f"{m.stem}.jpg" for m in masks]
        splits["all"] = pairs_by_stem([p for p in images if p.is_file()], masks, str(base))
    return Layout(base, "voc", splits, VOC_CLASSES, default_colors(len(VOC_CLASSES)))


def _generic(root: Path) -> Layout | None:
    images, masks = root / "images", root / "masks"
    if not (images.is_dir() and masks.is_dir()):
        return None
    classes, colors = read_classes(root / "classes.txt")
    splits = {}
    for split in ("train", "val", "test"):
        if (images / split).is_dir():
            if not (masks / split).is_dir():
                raise CnnlabError(f"{images / split} has no matching mask folder {masks / split}")
            splits[split] = pairs_by_stem(_files(images / split), _files(masks / split), f"{root} ({split})")
    if not splits:
        splits["all"] = pairs_by_stem(_files(images), _files(masks), str(root))
    return Layout(root, "folders", splits, classes, colors or default_colors(len(classes)),
                  rgb_masks=bool(colors))


def read_classes(path: Path) -> tuple[list[str], list[tuple[int, int, int]]]:
    """``classes.txt``: a class name per line in id order, optionally followed by R G B."""
    if not path.is_file():
        raise CnnlabError(f"{path}: missing; list the class names there, one per line in id order "
                          f"(optionally 'name R G B' to give colours)")
    names, colors = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.replace(",", " ").split()
        if not parts:
            continue
        rgb = parts[-3:] if len(parts) >= 4 and all(p.isdigit() for p in parts[-3:]) else []
        if rgb and not all(0 <= int(v) <= 255 for v in rgb):
            raise CnnlabError(f"{path}, line {n}: colour values must be 0..255, got {line!r}")
        names.append(" ".join(parts[:len(parts) - len(rgb)]))
        colors.append(tuple(int(v) for v in rgb) if rgb else None)
    if not names:
        raise CnnlabError(f"{path}: no class names")
    if any(c is None for c in colors) and not all(c is None for c in colors):
        raise CnnlabError(f"{path}: give a colour (R G B) for every class or for none")
    return names, ([] if colors[0] is None else colors)


def find_layout(root: Path) -> Layout:
    for detect in (_camvid, _voc, _generic):
        layout = detect(root)
        if layout is not None:
            return layout
    raise CnnlabError(f"{root}: no segmentation dataset found; expected {LAYOUTS}")


# ---------------------------------------------------------------------------------------------
# splits
# ---------------------------------------------------------------------------------------------

def split_pairs(layout: Layout, split: str, seed: int, val_fraction: float,
                test_fraction: float) -> list[tuple[Path, Path]]:
    """The pairs of ``split``: official, or carved by seed from train (or from all files)."""
    s = layout.splits
    if split in s:
        if split == "train" and "val" not in s:
            return _carve(s["train"], seed, val_fraction, 0.0)["train"]
        return s[split]
    if "all" in s:
        return _carve(s["all"], seed, val_fraction, test_fraction)[split]
    if split == "val" and "train" in s:
        return _carve(s["train"], seed, val_fraction, 0.0)["val"]
    have = ", ".join(sorted(s))
    hint = "; evaluate with --split val" if split == "test" else ""
    raise CnnlabError(f"{layout.root}: no {split} split (found {have}){hint}")


def _carve(pairs, seed: int, val_fraction: float, test_fraction: float) -> dict[str, list]:
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise CnnlabError(f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be "
                          f"in [0, 1) with a sum below 1")
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_test, n_val = round(len(pairs) * test_fraction), round(len(pairs) * val_fraction)
    parts = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    return {k: [pairs[i] for i in sorted(v)] for k, v in parts.items()}


# ---------------------------------------------------------------------------------------------
# decoding (checked, cached)
# ---------------------------------------------------------------------------------------------

def _decode(layout: Layout, pairs, skip_bad: bool, where: str):
    """(images list of uint8 (3, H, W), masks list of uint8 (H, W), kept pairs, skipped files, report)."""
    images, masks, kept, problems = [], [], [], []
    k = len(layout.classes)
    palette = layout.colors if layout.rgb_masks or layout.kind == "voc" else None  # known class colours
    lossy, changed, pixels = 0, 0, 0
    for image_path, mask_path in pairs:
        try:
            image = read_image(image_path, channels=3)
        except ImageError as e:
            problems.append(str(e))
            continue
        ids, moved = decode_mask(mask_path, layout.colors if layout.rgb_masks else None, k, palette)
        if moved:
            lossy, changed, pixels = lossy + 1, changed + moved, pixels + ids.size
        if ids.shape != tuple(image.shape[1:]):
            problems.append(f"mask {mask_path.name} is {ids.shape[1]}x{ids.shape[0]} but image "
                            f"{image_path.name} is {image.shape[2]}x{image.shape[1]} (W x H)")
            continue
        if layout.void is not None:
            ids = np.where(ids == layout.void, IGNORE, ids)
        wrong = bad_ids(ids, k)
        if wrong:
            problems.append(f"{mask_path} has class ids {wrong} outside 0..{k - 1} ({k} classes) "
                            f"and {IGNORE} (ignore)")
            continue
        images.append(image)
        masks.append(torch.from_numpy(ids.astype(np.uint8)))
        kept.append((image_path, mask_path))
    if problems and not skip_bad:
        raise_problems(problems, f"{where} (skip_bad=True / --skip-bad leaves these pairs out)")
    report = []
    if changed:
        report.append(f"{where}: lossy (JPEG) masks: {changed:,} pixels in {lossy} masks ({100 * changed / pixels:.2f}% "
                      f"of theirs) held no exact class value and were mapped to the nearest class "
                      f"(save masks as PNG to keep them exact)")
        warnings.warn(report[-1], stacklevel=3)
    return images, masks, kept, problems, report


def _target_size(sizes: set, image_size: int) -> tuple[int, int] | None:
    if len(sizes) > 1:
        side = image_size or MIXED_SIZE_DEFAULT
        return side, side
    h, w = next(iter(sizes))
    if not image_size or min(h, w) == image_size:
        return None
    scale = image_size / min(h, w)
    return round(h * scale), round(w * scale)


def resize_pair(images: torch.Tensor, masks: torch.Tensor, size: tuple[int, int]):
    """Images (N, C, H, W) antialiased, masks (N, H, W) nearest-neighbour, to ``size`` (h, w)."""
    masks = F.interpolate(masks[:, None].float(), size=size, mode="nearest-exact")[:, 0].to(torch.uint8)
    return resize(images, size), masks


def _cache_key(layout: Layout, pairs, image_size: int) -> str:
    h = hashlib.sha256(json.dumps([CACHE_VERSION, str(layout.root), layout.kind, layout.classes,
                                   layout.colors, layout.void, image_size]).encode())
    for image, mask in pairs:
        for p in (image, mask):
            st = p.stat()
            h.update(f"{p}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
    return h.hexdigest()[:24]


def load_split(layout: Layout, split: str, seed: int = 0, *, val_fraction: float = 0.1,
               test_fraction: float = 0.2, image_size: int = 0, skip_bad: bool = False,
               name: str | None = None) -> SegmentationImages:
    """Split ``split`` of ``layout`` in memory, checked and cached."""
    pairs = split_pairs(layout, split, seed, val_fraction, test_fraction)
    if not pairs:
        raise CnnlabError(f"{layout.root}: the {split} split is empty")
    name = f"{name or layout.root.name}/{split}"
    cached = cache_root() / "segment" / f"{_cache_key(layout, pairs, image_size)}.pt"
    if cached.is_file():
        data = torch.load(cached, weights_only=True)
        out = SegmentationImages(data["images"], data["masks"], layout.classes, name, colors=layout.colors,
                                 report=list(data.get("report", [])))
        out.skipped = list(data["skipped"])
        return out
    images, masks, kept, skipped, report = _decode(layout, pairs, skip_bad, f"{layout.root} ({split})")
    if not images:
        raise CnnlabError(f"{layout.root}: no readable pairs in the {split} split")
    size = _target_size({tuple(m.shape) for m in masks}, image_size)
    if size is None:
        x, y = torch.stack(images), torch.stack(masks)  # (N, 3, H, W), (N, H, W)
    else:
        pairs_resized = [resize_pair(i[None], m[None], size) for i, m in zip(images, masks)]
        x = torch.cat([p[0] for p in pairs_resized])
        y = torch.cat([p[1] for p in pairs_resized])
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".tmp{os.getpid()}")
    torch.save({"images": x, "masks": y, "skipped": skipped, "report": report}, tmp)
    os.replace(tmp, cached)  # a reader never sees half a cache file
    out = SegmentationImages(x, y, layout.classes, name, colors=layout.colors, report=report)
    out.skipped = skipped
    return out


# ---------------------------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------------------------

@register_path_loader("segment")
def load_segmentation_path(path: str | Path, split: str, seed: int = 0, *, val_fraction: float = 0.1,
                           test_fraction: float = 0.2, image_size: int = 0, skip_bad: bool = False,
                           download: bool = False, name: str | None = None) -> SegmentationImages:
    """Split ``split`` of the segmentation dataset at ``path`` (layout detected)."""
    path = Path(path).expanduser()
    if download:
        raise CnnlabError(f"{path}: --download works for the named classification datasets only")
    if not path.is_dir():
        raise CnnlabError(f"{path}: expected a folder holding {LAYOUTS}")
    return load_split(find_layout(path), split, seed, val_fraction=val_fraction, test_fraction=test_fraction,
                      image_size=image_size, skip_bad=skip_bad, name=name)


@register_dataset("camvid", tasks=("segment",),
                  description="CamVid road scenes (SegNet layout): 367 train / 101 val 480x360 images, 11 "
                  "classes, void ignored; `camvid:PATH` or $CNNLAB_DATA/camvid")
def camvid(split: str, seed: int = 0, *, root: str | Path | None = None, **opts) -> SegmentationImages:
    """CamVid from ``root`` (default ``$CNNLAB_DATA/camvid`` or ``~/.cache/cnnlab/data/camvid``)."""
    from cnnlab.data.named import data_dir

    folder = Path(root).expanduser() if root else data_dir("camvid")
    if not folder.is_dir():
        raise CnnlabError(f"camvid: no folder {folder}; pass --data camvid:PATH (or the PATH itself) "
                          f"or put CamVid's SegNet layout there")
    opts.pop("download", None)
    layout = _camvid(folder)
    if layout is None:
        raise CnnlabError(f"{folder}: not CamVid's SegNet layout (train/ + trainannot/ or train.txt)")
    return load_split(layout, split, seed, name="camvid", **opts)
