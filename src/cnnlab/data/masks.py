"""Segmentation data: images with per-pixel class masks, mask files and their checks.

A ``SegmentationImages`` split is a ``TensorImages`` whose labels are masks: images (N, C, H, W)
uint8 and masks (N, H, W) uint8 with class ids 0..K-1 and ``IGNORE`` (255) for pixels that count
in neither the loss nor the metrics (CamVid's void, VOC's object borders).

Mask files are read as class ids: 8-bit gray or 16-bit PNGs hold ids, palette PNGs (VOC) hold
ids as palette indices, RGB colour masks are converted by the classes' colours when they are
given (else refused, with the fix). JPEG masks are lossy (edges blur into in-between values):
a two-class gray mask (0/255) is thresholded at 128, other JPEG masks are mapped pixel by pixel
to the nearest class colour when colours are known (else refused); ``decode_mask`` counts the
pixels that held no exact class value, which the dataset reports once. Every pair is checked
before training starts; problems are reported for all files at once (the first few and a count).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from cnnlab.data.base import TensorImages
from cnnlab.errors import CnnlabError

IGNORE = 255  # mask value left out of the loss and the metrics
SHOW_FILES = 3  # files named in an error message before "and N more"


@dataclass
class SegmentationImages(TensorImages):
    """A segmentation split in memory: ``labels`` are masks (N, H, W) uint8 (IGNORE = 255).

    colors: one RGB triple per class, for colour masks, legends and palette conversion.
    """

    colors: list[tuple[int, int, int]] = field(default_factory=list)
    report: list[str] = field(default_factory=list)  # what reading the masks changed (lossy JPEG masks)

    def __post_init__(self):
        super().__post_init__()
        if self.labels.ndim != 3 or self.labels.shape[-2:] != self.images.shape[-2:]:
            raise ValueError(f"{self.name}: masks must be (N, H, W) matching the images "
                             f"{tuple(self.images.shape)}, got {tuple(self.labels.shape)}")
        if not self.colors:
            self.colors = default_colors(len(self.classes))

    @property
    def masks(self) -> Tensor:
        return self.labels

    def subset(self, index: Tensor, name: str | None = None) -> "SegmentationImages":
        return SegmentationImages(self.images[index], self.labels[index], self.classes, name or self.name,
                                  colors=self.colors)

    def pixel_counts(self) -> Tensor:
        """(K,) pixels of each class over the split (ignored pixels left out)."""
        counts = torch.bincount(self.labels.flatten().long(), minlength=IGNORE + 1)
        return counts[:len(self.classes)]

    def describe(self) -> dict:
        """Counts, classes, per-class pixel counts, image shape, ignored pixels."""
        counts = self.pixel_counts()
        total = self.labels.numel()
        return {"name": self.name, "count": len(self), "classes": list(self.classes),
                "class_counts": dict(zip(self.classes, counts.tolist())),
                "class_shares": {c: round(n / total, 4) for c, n in zip(self.classes, counts.tolist())},
                "ignored_share": round(1 - int(counts.sum()) / total, 4),
                "image_shape": tuple(self.image_shape), "in_memory": True, "skipped": len(self.skipped),
                "report": list(self.report)}

    def sample_grid(self, path: str | Path, n: int = 16, seed: int = 0) -> Path:
        """A PNG grid of ``n`` random samples (by seed), each image beside its colour mask."""
        from torchvision.utils import make_grid

        from cnnlab.images import save_image

        n = min(n, 16, len(self))
        index = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        tiles = []
        for i in index.tolist():
            tiles += [self.images[i, :3] if self.images.shape[1] >= 3 else self.images[i, :1].expand(3, -1, -1),
                      colorize(self.labels[i], self.colors)]
        grid = make_grid(torch.stack(tiles), nrow=8 if n >= 4 else 2 * n, padding=2, pad_value=255)
        return save_image(grid, path)


def default_colors(k: int) -> list[tuple[int, int, int]]:
    """Pascal VOC's colour map: class i gets the bits of i spread over R, G and B."""
    colors = []
    for i in range(k):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colors.append((r, g, b))
    return colors


def colorize(mask: Tensor, colors: list[tuple[int, int, int]]) -> Tensor:
    """(H, W) class ids -> (3, H, W) uint8 colours; IGNORE (and unknown ids) are black."""
    lut = torch.zeros(256, 3, dtype=torch.uint8)
    lut[:len(colors)] = torch.tensor(colors, dtype=torch.uint8)
    return lut[mask.long().clamp(0, 255)].permute(2, 0, 1).contiguous()


# ---------------------------------------------------------------------------------------------
# reading mask files
# ---------------------------------------------------------------------------------------------

def read_mask(path: str | Path, colors: list[tuple[int, int, int]] | None = None) -> np.ndarray:
    """A mask file as (H, W) class ids (uint16 numpy array, values as stored).

    colors: the classes' RGB colours, which turn an RGB colour mask into ids (pixels of
    another colour become IGNORE). Without them an RGB colour mask is an error.
    """
    return decode_mask(path, colors)[0]


def decode_mask(path: str | Path, colors: list[tuple[int, int, int]] | None = None,
                classes: int = 0, palette: list[tuple[int, int, int]] | None = None) -> tuple[np.ndarray, int]:
    """(ids (H, W) uint16, pixels changed): a mask file as class ids.

    PNG (and other lossless) masks: ids as stored, palette indices, or RGB by exact ``colors``;
    nothing changes. JPEG masks: with ``classes`` == 2 a gray mask is thresholded at 128 (0/255
    masks); otherwise each pixel takes the id of the nearest class colour (``palette``, else
    ``colors``); "changed" counts the pixels that held no exact class value (JPEG's blurred edges).
    """
    try:
        with Image.open(path) as img:
            img.load()
            mode, lossy = img.mode, img.format in LOSSY_FORMATS
            if lossy:
                pixels = np.asarray(img.convert("L" if mode in ("L", "1") else "RGB"))
            elif mode in ("P", "PA"):  # palette PNG (VOC): the palette index is the class id
                return np.asarray(img.convert("P") if mode == "PA" else img).astype(np.uint16), 0
            elif mode in ("L", "1"):
                return np.asarray(img.convert("L")).astype(np.uint16), 0
            elif mode.startswith("I"):
                return np.asarray(img).astype(np.int64).clip(0, 65535).astype(np.uint16), 0
            else:
                pixels = np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise CnnlabError(f"{path}: no such mask file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise CnnlabError(f"{path}: cannot read the mask ({e})") from None
    if lossy:
        return _lossy_to_ids(pixels, palette or colors, classes, path)
    rgb = pixels
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return rgb[..., 0].astype(np.uint16), 0  # gray stored as RGB
    if not colors:
        raise CnnlabError(f"{path}: an RGB colour mask where class ids are expected; give the class "
                          f"colours (a classes file with 'name R G B' lines) to convert it by palette, "
                          f"or save masks as 8-bit ids or palette PNGs")
    return rgb_to_ids(rgb, colors), 0


LOSSY_FORMATS = ("JPEG", "MPO")  # Pillow's names of lossy mask formats (MPO: a multi-picture JPEG)
GRAY_TOLERANCE = 16  # a JPEG whose channels differ by at most this much is a gray mask (chroma noise)
BINARY_THRESHOLD = 128  # a two-class gray JPEG mask: at least this is class 1


def _lossy_to_ids(pixels: np.ndarray, colors, classes: int, path) -> tuple[np.ndarray, int]:
    """A JPEG mask's ids: a binary threshold, or the nearest class colour; and the pixels changed."""
    gray = pixels if pixels.ndim == 2 else (
        pixels.mean(-1).round().astype(np.uint8)
        if int(np.ptp(pixels.astype(np.int16), axis=-1).max(initial=0)) <= GRAY_TOLERANCE else None)
    if gray is not None and classes == 2:
        ids = (gray >= BINARY_THRESHOLD).astype(np.uint16)
        return ids, int(((gray != 0) & (gray != 255)).sum())
    if not colors:
        raise CnnlabError(f"{path}: a JPEG mask for {classes or 'several'} classes; JPEG changes pixel values, "
                          f"so class ids cannot be read from it: save masks as PNG, or give each class its "
                          f"colour ('name R G B' lines in classes.txt) to map pixels to the nearest colour "
                          f"(two-class 0/255 masks are thresholded at {BINARY_THRESHOLD})")
    rgb = np.repeat(gray[..., None], 3, -1) if pixels.ndim == 2 else pixels
    return nearest_color_ids(rgb, colors)


def nearest_color_ids(rgb: np.ndarray, colors: list[tuple[int, int, int]]) -> tuple[np.ndarray, int]:
    """(H, W, 3) colours -> (H, W) id of the nearest class colour (squared RGB distance), and how
    many pixels were not exactly a class colour."""
    rgb = rgb.astype(np.int32)
    best = np.full(rgb.shape[:2], np.iinfo(np.int32).max, dtype=np.int32)
    ids = np.zeros(rgb.shape[:2], dtype=np.uint16)
    for i, c in enumerate(colors):  # one pass per class: memory stays (H, W)
        d = ((rgb - np.asarray(c, dtype=np.int32)) ** 2).sum(-1)
        closer = d < best
        ids[closer], best[closer] = i, d[closer]
    return ids, int((best > 0).sum())


def unknown_colors(path: str | Path, colors: list[tuple[int, int, int]], n: int = 3) -> list[tuple[tuple, int]]:
    """The ``n`` commonest colours of an RGB mask file that are no class colour, with their pixel counts."""
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"))
    code = ((rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]).ravel()
    code = code[~np.isin(code, [(r << 16) | (g << 8) | b for r, g, b in colors])]
    values, counts = np.unique(code, return_counts=True)
    top = np.argsort(-counts, kind="stable")[:n]
    return [(((int(v) >> 16) & 255, (int(v) >> 8) & 255, int(v) & 255), int(c)) for v, c in zip(values[top], counts[top])]


def rgb_to_ids(rgb: np.ndarray, colors: list[tuple[int, int, int]]) -> np.ndarray:
    """(H, W, 3) colours -> (H, W) ids by exact colour match; other colours -> IGNORE."""
    code = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    ids = np.full(code.shape, IGNORE, dtype=np.uint16)
    for i, (r, g, b) in enumerate(colors):
        ids[code == ((r << 16) | (g << 8) | b)] = i
    return ids


def mask_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of a mask file from its header."""
    try:
        with Image.open(path) as img:
            return img.size[1], img.size[0]
    except (UnidentifiedImageError, OSError) as e:
        raise CnnlabError(f"{path}: cannot read the mask header ({e})") from None


# ---------------------------------------------------------------------------------------------
# checking pairs before training
# ---------------------------------------------------------------------------------------------

def pairs_by_stem(images: list[Path], masks: list[Path], where: str) -> list[tuple[Path, Path]]:
    """Match image and mask files by file stem; unmatched files on either side are an error."""
    by_stem = {m.stem: m for m in masks}
    img_stems = {i.stem for i in images}
    lonely_images = [i for i in images if i.stem not in by_stem]
    lonely_masks = [m for m in masks if m.stem not in img_stems]
    problems = [f"image without mask: {p}" for p in lonely_images]
    problems += [f"mask without image: {p}" for p in lonely_masks]
    raise_problems(problems, where)
    return [(i, by_stem[i.stem]) for i in images]


def raise_problems(problems: list[str], where: str) -> None:
    """One CnnlabError listing the first few problems and how many there are in all."""
    if problems:
        more = f"; and {len(problems) - SHOW_FILES} more" if len(problems) > SHOW_FILES else ""
        raise CnnlabError(f"{where}: {len(problems)} problem(s): {'; '.join(problems[:SHOW_FILES])}{more}")


def bad_ids(ids: np.ndarray, k: int, ignore: int | None = IGNORE) -> list[int]:
    """Values of a mask that are neither a class id (0..k-1) nor ``ignore`` (at most 5)."""
    values = np.unique(ids)
    return [int(v) for v in values[(values >= k) & (values != (-1 if ignore is None else ignore))][:5]]
