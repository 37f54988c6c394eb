"""What a dataset holds: counts per class, image shape, and a labelled grid of samples."""
from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import ImageDraw, ImageFont
from torchvision.utils import make_grid

from cnnlab.data.base import TensorImages
from cnnlab.images import resize, to_pil

TILE = 64        # pixels: tiny images (8x8 digits) are enlarged to about this side, nearest-neighbour
MAX_TILE = 128   # pixels: larger images are shrunk to this side
LABEL_H = 12     # pixels of caption under each tile
PAD = 2          # pixels between tiles


def describe(dataset) -> dict:
    """Count, classes, per-class counts, image shape (C, H, W) and skipped files of a split."""
    if hasattr(dataset, "describe"):  # e.g. segmentation: per-class pixel counts
        return dataset.describe()
    counts = torch.bincount(dataset.labels, minlength=len(dataset.classes)).tolist()
    return {
        "name": dataset.name,
        "count": len(dataset),
        "classes": list(dataset.classes),
        "class_counts": dict(zip(dataset.classes, counts)),
        "image_shape": tuple(dataset.image_shape),
        "in_memory": isinstance(dataset, TensorImages),
        "skipped": len(dataset.skipped),
    }


def save_sample_grid(dataset, path: str | Path, n: int = 64, seed: int = 0) -> Path:
    """A PNG grid of ``n`` random samples (by seed), each captioned with its class name."""
    if hasattr(dataset, "sample_grid"):  # e.g. segmentation: image beside its colour mask
        return dataset.sample_grid(path, n, seed)
    g = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(dataset), generator=g)[:n].tolist()
    items = [_item(dataset, i) for i in index]
    images = [_tile(img) for img, _ in items]
    labels = [dataset.classes[label] for _, label in items]
    th, tw = images[0].shape[1:]
    tiles = [torch.cat([im, torch.full((3, LABEL_H, tw), 255, dtype=torch.uint8)], 1) for im in images]
    nrow = math.ceil(math.sqrt(len(tiles)))
    grid = make_grid(torch.stack(tiles), nrow=nrow, padding=PAD, pad_value=255)  # (3, H, W)
    canvas = to_pil(grid)
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    chars = max(1, tw // 6)  # the default font is about 6 pixels a character
    for k, label in enumerate(labels):
        x = PAD + (k % nrow) * (tw + PAD)
        y = PAD + (k // nrow) * (th + LABEL_H + PAD) + th
        draw.text((x + 1, y), label[:chars], fill=(0, 0, 0), font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def _item(dataset, i: int) -> tuple[torch.Tensor, int]:
    if isinstance(dataset, TensorImages):
        return dataset.images[i], int(dataset.labels[i])
    return dataset[i]


def _tile(img: torch.Tensor) -> torch.Tensor:
    """uint8 (C, H, W) -> (3, h, w) RGB tile: small ones enlarged sharply, big ones shrunk."""
    img = img[:3] if img.shape[0] >= 3 else img[:1].expand(3, -1, -1)
    h, w = img.shape[1:]
    side = max(h, w)
    if side < TILE:
        k = math.ceil(TILE / side)
        return img.repeat_interleave(k, 1).repeat_interleave(k, 2)  # nearest: keep pixels square
    if side > MAX_TILE:
        return resize(img, (max(1, h * MAX_TILE // side), max(1, w * MAX_TILE // side)))
    return img.contiguous()
