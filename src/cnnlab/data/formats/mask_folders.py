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
  converted by palette. No mask value is ignored unless a line ``ignore N`` says so; a two-class
  set's 0/255 masks read 255 as class 1 (``cnnlab.data.formats.mask_values`` has the rules).

Masks may be index PNGs (gray, 16-bit), palette PNGs (the palette index is the id) or JPEGs:
JPEG blurs edges into in-between values, so a two-class 0/255 JPEG mask is thresholded at 128
and other JPEG masks are mapped to the nearest class colour (``classes.txt`` colours, VOC's
palette); the number of pixels changed is warned about once per split and kept in its ``report``.

A missing val split is carved from train (``val_fraction``, by seed); the generic layout
without split folders also carves ``test_fraction``. Decoded splits are cached as uint8
tensors under ``$CNNLAB_CACHE/segment`` (keyed by the files and their mtimes). Images of one
size keep it (``image_size`` scales the shorter side to it); mixed sizes are resized to
``image_size`` squared (default 256). Masks are resized nearest-neighbour; a mask at another size
than its image but of the same aspect ratio is first resized to its image (counted, warned about).

``segmentation_layout(path)`` names the layout at ``path`` (or None) without reading any image.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.data.cache import cache_root
from cnnlab.data.formats.class_folders import IMAGE_EXTENSIONS
from cnnlab.data.formats.mask_values import MaskReader, PairProblem
from cnnlab.data.formats.text import read_utf8
from cnnlab.data.layout import register_layout
from cnnlab.data.masks import SHOW_FILES, SegmentationImages, default_colors, pairs_by_stem, raise_problems
from cnnlab.data.registry import register_dataset, register_path_loader
from cnnlab.errors import CnnlabError, MissingSplit
from cnnlab.files import replacing
from cnnlab.images import ImageError, read_image, resize

CAMVID_CLASSES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
                  "Pedestrian", "Bicyclist"]
CAMVID_COLORS = [(128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
                 (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)]
CAMVID_VOID = 11
VOC_IGNORE = 255  # VOC's object borders and unlabelled pixels
VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor"]
MIXED_SIZE_DEFAULT = 256  # pixels, square: datasets of mixed image sizes without image_size
CACHE_VERSION = 2  # 2: 255 is no longer ignored everywhere; masks of another size are resized
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
    ignore: int | None = None  # the mask value that means "ignore" (CamVid's 11, VOC's 255, classes.txt's)
    ignore_why: str = ""  # where that rule comes from, for messages
    rgb_masks: bool = False  # RGB colour masks are converted by ``colors``
    fix: str = ""  # how to change the rules, for a mask value outside the classes ({value})


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
        elif _looks_like_pair_list(listing):
            splits[split] = _pair_list(root, listing)
    if not splits:
        return None
    return Layout(root, "camvid", splits, CAMVID_CLASSES, CAMVID_COLORS, ignore=CAMVID_VOID,
                  ignore_why="CamVid's void", fix="CamVid masks hold ids 0..10 and 11 (void)")


def _pair_list(root: Path, listing: Path) -> list[tuple[Path, Path]]:
    """SegNet's ``image mask`` lines; their ``/SegNet/CamVid/`` prefix is replaced by ``root``."""
    pairs, problems = [], []
    for n, line in enumerate(read_utf8(listing).splitlines(), 1):
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
            stems = read_utf8(listing).split()
            pairs = [(base / "JPEGImages" / f"{s}.jpg", base / "SegmentationClass" / f"{s}.png") for s in stems]
            missing = [f"no such file {p}" for pair in pairs for p in pair if not p.is_file()]
            raise_problems(missing, str(listing))
            splits[split] = pairs
    if not splits:
        masks = _files(base / "SegmentationClass")
        images = [base / "JPEGImages" / f"{m.stem}.jpg" for m in masks]
        splits["all"] = pairs_by_stem([p for p in images if p.is_file()], masks, str(base))
    return Layout(base, "voc", splits, VOC_CLASSES, default_colors(len(VOC_CLASSES)), ignore=VOC_IGNORE,
                  ignore_why="VOC's borders", fix="VOC masks hold ids 0..20 and 255 (borders)")


def _generic(root: Path) -> Layout | None:
    images, masks = root / "images", root / "masks"
    if not (images.is_dir() and masks.is_dir()):
        return None
    classes, colors, ignore = read_classes(root / "classes.txt")
    splits = {}
    for split in ("train", "val", "test"):
        if (images / split).is_dir():
            if not (masks / split).is_dir():
                raise CnnlabError(f"{images / split} has no matching mask folder {masks / split}")
            splits[split] = pairs_by_stem(_files(images / split), _files(masks / split), f"{root} ({split})")
    if not splits:
        splits["all"] = pairs_by_stem(_files(images), _files(masks), str(root))
    fix = (f"if {{value}} marks pixels to leave out, add the line 'ignore {{value}}' to {root / 'classes.txt'}; "
           f"else list one class per mask id there")
    return Layout(root, "folders", splits, classes, colors or default_colors(len(classes)), ignore=ignore,
                  ignore_why="classes.txt's 'ignore' line", rgb_masks=bool(colors), fix=fix)


def read_classes(path: Path) -> tuple[list[str], list[tuple[int, int, int]], int | None]:
    """``classes.txt``: a class name per line in id order, optionally followed by R G B; a line
    ``ignore N`` makes mask value N mean "ignore". Returns (names, colours or [], ignore or None)."""
    if not path.is_file():
        raise CnnlabError(f"{path}: missing; list the class names there, one per line in id order "
                          f"(optionally 'name R G B' to give colours)")
    names, colors, ignore = [], [], None
    for n, line in enumerate(read_utf8(path).splitlines(), 1):
        parts = line.replace(",", " ").split()
        if not parts:
            continue
        if parts[0].lower() == "ignore" and len(parts) == 2:
            if not (parts[1].isdigit() and 0 <= int(parts[1]) <= 255) or ignore is not None:
                raise CnnlabError(f"{path}, line {n}: expected one 'ignore N' line with N in 0..255 (the mask "
                                  f"value of pixels to leave out), got {line!r}")
            ignore = int(parts[1])
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
    if ignore is not None and ignore < len(names):
        raise CnnlabError(f"{path}: 'ignore {ignore}' is the id of class {names[ignore]!r}; the ignore value "
                          f"must be outside 0..{len(names) - 1}")
    return names, ([] if colors[0] is None else colors), ignore


@register_layout("segment")
def segmentation_layout(path: Path) -> str | None:
    """A short name of the segmentation layout at ``path``, None when it holds none. Cheap (names
    and at most one line of a pair list are read, no image) and never raises."""
    try:
        path = Path(path)
        if not path.is_dir():
            return None
        if any((path / s).is_dir() and (path / f"{s}annot").is_dir() for s in ("train", "val", "test")):
            return "CamVid/SegNet (train/ + trainannot/)"
        if any(_looks_like_pair_list(path / f"{s}.txt") for s in ("train", "val", "test")):
            return "CamVid/SegNet (train.txt 'image mask' pair lists)"
        for base in (path, path / "VOC2012", path / "VOCdevkit" / "VOC2012"):
            if (base / "JPEGImages").is_dir() and (base / "SegmentationClass").is_dir():
                return "Pascal VOC segmentation (SegmentationClass/)"
        if (path / "images").is_dir() and (path / "masks").is_dir():
            return "images/ + masks/ (+ classes.txt)"
    except OSError:
        return None
    return None


def _looks_like_pair_list(listing: Path) -> bool:
    """Its first line is two image paths (SegNet's ``image mask``)."""
    if not listing.is_file():
        return False
    with open(listing, "rb") as f:
        parts = f.readline(4096).split()
    return len(parts) == 2 and all(Path(p.decode("utf-8", "replace")).suffix.lower() in IMAGE_EXTENSIONS
                                   for p in parts)


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
    raise MissingSplit(f"{layout.root}: no {split} split (found {have}){hint}")


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
    """(images list of uint8 (3, H, W), masks list of uint8 (H, W), skipped problems, report, warnings)."""
    palette = layout.colors if layout.rgb_masks or layout.kind == "voc" else None  # known class colours
    reader = MaskReader(layout.classes, layout.colors if layout.rgb_masks else None, palette, layout.ignore,
                        layout.ignore_why, layout.fix)
    images, masks, problems = [], [], []
    for image_path, mask_path in pairs:
        try:
            image = read_image(image_path, channels=3)
            ids = reader.read(mask_path, image_path, tuple(image.shape[1:]))
        except (ImageError, PairProblem) as e:
            problems.append(str(e))
            continue
        images.append(image)
        masks.append(torch.from_numpy(ids))
    if problems and not skip_bad:
        raise_problems(problems, f"{where} (skip_bad=True / --skip-bad leaves these pairs out)")
    report, warn = reader.report(where)
    if problems:
        more = f"; and {len(problems) - SHOW_FILES} more" if len(problems) > SHOW_FILES else ""
        report.append(f"{where}: left out {len(problems)} of {len(pairs)} pairs (skip_bad): "
                      f"{'; '.join(problems[:SHOW_FILES])}{more}")
        warn.append(report[-1])
    return images, masks, problems, report, warn


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
                                   layout.colors, layout.ignore, image_size]).encode())
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
        _warn(data["warnings"])
        out = SegmentationImages(data["images"], data["masks"], layout.classes, name, colors=layout.colors,
                                 report=list(data["report"]))
        out.skipped = list(data["skipped"])
        return out
    images, masks, skipped, report, warn = _decode(layout, pairs, skip_bad, f"{layout.root} ({split})")
    _warn(warn)
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
    with replacing(cached) as f:  # a reader never sees half a cache file
        torch.save({"images": x, "masks": y, "skipped": skipped, "report": report, "warnings": warn}, f)
    out = SegmentationImages(x, y, layout.classes, name, colors=layout.colors, report=report)
    out.skipped = skipped
    return out


def _warn(lines: list[str]) -> None:
    for line in lines:
        warnings.warn(line, stacklevel=4)  # the caller of load_dataset


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
    from cnnlab.data.formats.named_sets import data_dir

    folder = Path(root).expanduser() if root else data_dir("camvid")
    if not folder.is_dir():
        raise CnnlabError(f"camvid: no folder {folder}; pass --data camvid:PATH (or the PATH itself) "
                          f"or put CamVid's SegNet layout there")
    opts.pop("download", None)
    layout = _camvid(folder)
    if layout is None:
        raise CnnlabError(f"{folder}: not CamVid's SegNet layout (train/ + trainannot/ or train.txt)")
    return load_split(layout, split, seed, name="camvid", **opts)
