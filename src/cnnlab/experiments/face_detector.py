"""Sliding-window detection: a window classifier slid over an image pyramid, then NMS.

    result = detect(lm, image, threshold=0.9)   # lm: a face / non-face classifier on 25x25 crops
    result["boxes"], result["scores"]            # (K, 4) x1, y1, x2, y2 in image pixels; (K,)

The image is shrunk by factors ``s = window / face_size`` for a range of face sizes, every
``window x window`` patch (``stride`` pixels apart) is classified, a window scoring above
``threshold`` becomes a box of side ``window / s`` in the original image, and non-maximum
suppression (``torchvision.ops.nms``) keeps the best of overlapping boxes. With ``neighbours=3``
a window's score is the mean log-odds of the 3x3 windows around it (a stride apart): a face
is seen by every window that frames it a little differently, a false alarm often by one alone.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import box_iou, nms

from cnnlab.errors import CnnlabError
from cnnlab.images import resize

PYRAMID_STEP = 1.25  # ratio between neighbouring face sizes of the pyramid
NMS_IOU = 0.3        # boxes overlapping a better one by more than this IoU are dropped
WINDOW_BATCH = 256   # windows per forward pass: 1.8x the windows/s of 2048 for 25x25 crops on one CPU
                     # thread (batches that stay in cache), the same scores to the bit


def to_gray(image: Tensor) -> Tensor:
    """uint8 (C, H, W) -> (1, H, W) luminance (ITU-R 601), as the 25x25 LFW crops are gray."""
    if image.shape[0] == 1:
        return image
    weights = torch.tensor([299, 587, 114], dtype=torch.int32).view(3, 1, 1)
    return (((image[:3].int() * weights).sum(0, keepdim=True) + 500) // 1000).to(torch.uint8)


def pyramid_scales(height: int, width: int, window: int, min_face: int | None = None,
                   max_face: int | None = None) -> list[float]:
    """Shrink factors for face sizes from ``min_face`` (default: a tenth of the shorter side, at
    least ``window``) to ``max_face`` (default: the shorter side), ``PYRAMID_STEP`` apart."""
    short = min(height, width)
    lo = max(window, min_face or short // 10)
    hi = min(short, max_face or short)
    if lo > hi:
        raise CnnlabError(f"face sizes {lo}..{hi} px: the image ({width}x{height}) is too small or "
                          f"min_face > max_face (a face is at least {window} px)")
    n = int(math.floor(math.log(hi / lo) / math.log(PYRAMID_STEP))) + 1
    return [window / (lo * PYRAMID_STEP ** k) for k in range(n)]


def windows_at(gray: Tensor, scale: float, window: int, stride: int) -> tuple[Tensor, Tensor, tuple[int, int]]:
    """All ``window``-sized patches of ``gray`` (1, H, W) shrunk by ``scale``.

    Returns windows (N, 1, window, window) uint8, their boxes (N, 4) in original pixels, and
    the (rows, cols) grid they form.
    """
    _, h, w = gray.shape
    hs, ws = max(window, round(h * scale)), max(window, round(w * scale))
    small = resize(gray, (hs, ws))  # (1, hs, ws)
    patches = small.unfold(1, window, stride).unfold(2, window, stride)  # (1, rows, cols, window, window)
    rows, cols = patches.shape[1:3]
    windows = patches.reshape(rows * cols, 1, window, window)
    sy, sx = hs / h, ws / w
    ys = torch.arange(rows, dtype=torch.float32) * stride / sy
    xs = torch.arange(cols, dtype=torch.float32) * stride / sx
    y1, x1 = torch.meshgrid(ys, xs, indexing="ij")
    boxes = torch.stack([x1, y1, x1 + window / sx, y1 + window / sy], -1).reshape(-1, 4)
    return windows, boxes, (rows, cols)


@torch.no_grad()
def window_scores(lm, windows: Tensor, positive: int, prepare=None, batch_size: int = WINDOW_BATCH) -> Tensor:
    """Probability of class ``positive`` for each uint8 window (N, 1, h, w), after ``prepare``."""
    prepare = prepare or (lambda x: x)
    return torch.cat([lm.logits(prepare(windows[i:i + batch_size])).softmax(1)[:, positive].cpu()
                      for i in range(0, len(windows), batch_size)]) if len(windows) else torch.zeros(0)


@torch.no_grad()
def window_log_odds(lm, windows: Tensor, positive: int, prepare=None, batch_size: int = WINDOW_BATCH) -> Tensor:
    """log(p / (1 - p)) of class ``positive`` for each uint8 window (N, 1, h, w), after ``prepare``.

    Unlike the probability it does not round to 1.0 in float32 for confident windows, so scores
    can still be ranked and averaged there."""
    prepare = prepare or (lambda x: x)
    out = []
    for i in range(0, len(windows), batch_size):
        logits = lm.logits(prepare(windows[i:i + batch_size])).float().cpu()  # (B, K)
        others = torch.cat([logits[:, :positive], logits[:, positive + 1:]], 1)
        out.append(logits[:, positive] - others.logsumexp(1))
    return torch.cat(out) if out else torch.zeros(0)


def neighbour_mean(grid: Tensor, neighbours: int) -> Tensor:
    """The mean of each (rows, cols) grid cell's ``neighbours x neighbours`` square (fewer at the edges)."""
    if neighbours <= 1:
        return grid
    return F.avg_pool2d(grid[None, None], neighbours, 1, neighbours // 2, count_include_pad=False)[0, 0]


def detect(lm, image: Tensor, *, positive: int, window: int, scales: list[float] | None = None,
           threshold: float = 0.5, stride: int = 2, nms_iou: float = NMS_IOU, min_face: int | None = None,
           max_face: int | None = None, prepare=None, neighbours: int = 1) -> dict:
    """Boxes where ``lm`` sees class ``positive``, over an image pyramid of ``image`` (C, H, W) uint8.

    ``prepare``: what is done to every uint8 window batch before the model sees it (as to its
    training crops), e.g. a per-window contrast normalisation. ``neighbours``: odd side of the
    square of windows (at one scale) whose mean log-odds scores a window; 1: each on its own.
    Returns ``{"boxes" (K, 4), "scores" (K,) best first, "heatmap" (H, W) best window score
    around each pixel, "scales", "windows"}``.
    """
    if stride < 1:
        raise CnnlabError(f"stride {stride}: expected a positive number of pixels")
    if not 0 <= threshold <= 1:
        raise CnnlabError(f"threshold {threshold}: expected a probability between 0 and 1")
    if neighbours < 1 or neighbours % 2 == 0:
        raise CnnlabError(f"neighbours {neighbours}: expected an odd number of windows (1: no smoothing)")
    gray = to_gray(image)
    _, h, w = gray.shape
    scales = scales or pyramid_scales(h, w, window, min_face, max_face)
    if any(s <= 0 or min(h, w) * s < window for s in scales):
        raise CnnlabError(f"scales {scales}: each must be > 0 and leave the image at least {window} px "
                          f"(its shorter side is {min(h, w)} px)")
    all_boxes, all_scores, heat, count = [], [], torch.zeros(h, w), 0
    lowest = float(torch.logit(torch.tensor(threshold, dtype=torch.float64)))  # -inf for 0, inf for 1
    for scale in scales:
        windows, boxes, (rows, cols) = windows_at(gray, scale, window, stride)
        log_odds = window_log_odds(lm, windows, positive, prepare)  # (rows * cols,)
        log_odds = neighbour_mean(log_odds.view(rows, cols), neighbours).flatten()
        count += len(windows)
        _paint(heat, torch.sigmoid(log_odds).view(1, 1, rows, cols), boxes, window, stride)
        keep = log_odds >= lowest
        all_boxes.append(boxes[keep])
        all_scores.append(log_odds[keep])
    boxes, log_odds = torch.cat(all_boxes), torch.cat(all_scores)
    keep = nms(boxes, log_odds, nms_iou)  # indices, best first (log-odds: no ties at p = 1.0)
    return {"boxes": boxes[keep], "scores": torch.sigmoid(log_odds[keep]), "heatmap": heat,
            "scales": list(scales), "windows": count}


def iou(a: tuple[float, float, float, float] | Tensor, b: tuple[float, float, float, float] | Tensor) -> float:
    """Intersection over union of two boxes (x1, y1, x2, y2)."""
    return float(box_iou(torch.as_tensor(a, dtype=torch.float32).view(1, 4),
                         torch.as_tensor(b, dtype=torch.float32).view(1, 4))[0, 0])


def _paint(heat: Tensor, grid: Tensor, boxes: Tensor, window: int, stride: int) -> None:
    """Raise ``heat`` (H, W) to each window's score over the cell around the window's centre."""
    h, w = heat.shape
    side_x, side_y = float(boxes[0, 2] - boxes[0, 0]), float(boxes[0, 3] - boxes[0, 1])
    cell_x, cell_y = side_x * stride / window, side_y * stride / window  # window spacing, original px
    rows, cols = grid.shape[-2:]
    up = F.interpolate(grid, size=(max(1, round(rows * cell_y)), max(1, round(cols * cell_x))),
                       mode="nearest")[0, 0]
    top, left = round((side_y - cell_y) / 2), round((side_x - cell_x) / 2)  # the first cell
    hh, ww = min(up.shape[0], h - top), min(up.shape[1], w - left)
    region = heat[top:top + hh, left:left + ww]
    torch.maximum(region, up[:hh, :ww], out=region)


def plot_detections(image: Tensor, result: dict, path: str | Path, truth=None, title: str = "") -> str:
    """The photo with its boxes (best in green), and the heat map of window scores beside it."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from cnnlab.experiments.tables import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(11, 5.4))
    rgb = image.permute(1, 2, 0).numpy()
    axes[0].imshow(rgb[..., 0] if rgb.shape[-1] == 1 else rgb[..., :3], cmap="gray")
    if truth is not None:
        x1, y1, x2, y2 = truth
        axes[0].add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="white", ls="--", lw=1.5))
    for k, (box, score) in enumerate(zip(result["boxes"].tolist(), result["scores"].tolist())):
        x1, y1, x2, y2 = box
        color = "lime" if k == 0 else "yellow"
        axes[0].add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=color, lw=2 if k == 0 else 1))
        axes[0].text(x1, y1 - 3, f"{score:.2f}", color=color, fontsize=8)
    axes[0].set_title(title or f"{len(result['boxes'])} detections after NMS", fontsize=10)
    shown = axes[1].imshow(result["heatmap"].numpy(), cmap="inferno", vmin=0, vmax=1)
    axes[1].set_title("face score (best window over all scales)", fontsize=10)
    fig.colorbar(shown, ax=axes[1], fraction=0.046)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path, dpi=70)
