"""What a dataset holds: counts per class, image shape, and a labelled grid of samples.

Detection data adds how large its boxes are (a histogram of sqrt(area) in the images' own pixels,
and COCO's small / medium / large) and, by file, the degenerate boxes its reader dropped.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import ImageDraw, ImageFont
from torchvision.utils import make_grid

from cnnlab.data.base import TensorImages
from cnnlab.images import resize, save_pil, to_pil

TILE = 64        # pixels: tiny images (8x8 digits) are enlarged to about this side, nearest-neighbour
MAX_TILE = 128   # pixels: larger images are shrunk to this side
LABEL_H = 12     # pixels of caption under each tile
PAD = 2          # pixels between tiles
# Box sides, sqrt(area) in pixels of the image on disk: bin edges (each bin is [lo, hi)).
BOX_SIZE_EDGES = (8, 16, 32, 64, 128, 256)
COCO_AREAS = (32 ** 2, 96 ** 2)  # pixels^2: COCO's small < 32^2 <= medium < 96^2 <= large
MAX_DEGENERATE_LINES = 20  # files listed one a line under "degenerate boxes"; then a count


def describe(dataset) -> dict:
    """Count, classes, per-class counts, image shape (C, H, W) and skipped files of a split."""
    if hasattr(dataset, "describe"):  # e.g. segmentation: per-class pixel counts
        info = dataset.describe()
        if hasattr(dataset, "targets") and hasattr(dataset, "degenerate"):  # detection
            info.update(describe_boxes(dataset))
            info["report"] = list(info.get("report", [])) + box_lines(info)
        return info
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


# ----------------------------------------------------------------------------- detection boxes


def box_sides(dataset) -> torch.Tensor:
    """sqrt(area) of every kept box, in pixels of its image on disk (before resizing), (N,)."""
    sides = []
    for i, t in enumerate(dataset.targets):
        b = t["boxes"].float()  # (K, 4) in the resized image's pixels
        if dataset.source_sizes:
            (sh, sw), (h, w) = dataset.source_sizes[i], dataset.images.shape[-2:]
            b = b * torch.tensor([sw / w, sh / h, sw / w, sh / h])
        sides.append(((b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)).sqrt())
    return torch.cat(sides + [torch.zeros(0)])


def describe_boxes(dataset) -> dict:
    """Box-size histogram, COCO size classes and the degenerate boxes by file (JSON-ready)."""
    sides = box_sides(dataset)
    edges = torch.tensor(BOX_SIZE_EDGES, dtype=torch.float32)
    counts = torch.bincount(torch.bucketize(sides, edges, right=True), minlength=len(edges) + 1).tolist()
    names = ([f"<{BOX_SIZE_EDGES[0]}"] + [f"{a}-{b}" for a, b in zip(BOX_SIZE_EDGES, BOX_SIZE_EDGES[1:])]
             + [f">={BOX_SIZE_EDGES[-1]}"])
    area = sides ** 2
    small, large = COCO_AREAS
    coco = {"small": int((area < small).sum()), "medium": int(((area >= small) & (area < large)).sum()),
            "large": int((area >= large).sum())}
    return {"box_sizes": dict(zip(names, counts)), "box_sizes_coco": coco,
            "degenerate": {f: list(d) for f, d in dataset.degenerate.items()}}


def box_lines(info: dict) -> list[str]:
    """The terminal lines for ``describe_boxes``' fields."""
    sizes, coco = info["box_sizes"], info["box_sizes_coco"]
    total = sum(sizes.values())
    lines = [f"box sizes, sqrt(area) in the images' own pixels ({total} boxes):"]
    top = max(sizes.values(), default=0) or 1
    for name, n in sizes.items():
        lines.append(f"  {name:>8} {n:>7}  {'#' * round(30 * n / top)}")
    lines.append(f"  COCO sizes: small (<32^2) {coco['small']}, medium {coco['medium']}, "
                 f"large (>=96^2) {coco['large']}")
    bad = info["degenerate"]
    if bad:
        n = sum(len(v) for v in bad.values())
        lines.append(f"degenerate boxes, dropped: {n} in {len(bad)} files (category (x0, y0, x1, y1) in the "
                     f"image's pixels, 0-based edges):")
        for f, boxes in list(bad.items())[:MAX_DEGENERATE_LINES]:
            lines.append(f"  {f}: {'; '.join(boxes)}")
        if len(bad) > MAX_DEGENERATE_LINES:
            lines.append(f"  and {len(bad) - MAX_DEGENERATE_LINES} more files (--json lists them all)")
    else:
        lines.append("degenerate boxes: none")
    return lines


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
    return save_pil(canvas, path)


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
