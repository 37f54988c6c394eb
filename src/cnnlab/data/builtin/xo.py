"""``xo``: the lecture's "X or X?" case study as a dataset: X versus O on 28x28 canvases.

Each image is one hand-drawn-looking X or O, white ink on a dark, noisy background:
strokes are rendered with antialiasing from their distance to line segments, and every
sample gets its own shift, scale, aspect, rotation, shear, stroke width, endpoint jitter
(X) or wobble of the outline (O), ink/background levels and Gaussian noise: the
"shifted, shrunk, rotated, deformed" variation that defeats pixel-by-pixel matching.

Classes ``["O", "X"]`` (label 0 = O, label 1 = X), exactly balanced in every split.
Sizes: train 4,000, val 500, test 1,000. Each split is drawn from its own seed stream
derived from ``(seed, split)``, so the splits never share an image.

Also here, for explain/: the lecture's two 9x9 images of an X in -1/+1 pixels
(``XO_CLEAN`` and the shifted/deformed ``XO_SHIFTED``) and its three 3x3 ``XO_FILTERS``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from cnnlab.data.base import TensorImages
from cnnlab.data.registry import SPLITS, check_image_size, register_dataset

CLASSES = ["O", "X"]
SPLIT_SIZES = {"train": 4000, "val": 500, "test": 1000}
O_VERTICES = 16  # the O is a closed, wobbly 16-gon; the X is 2 strokes
CHUNK = 64  # images rendered at once: bounds the (chunk, segments, pixels) distance tensor

# ---------------------------------------------------------------------------------------
# The lecture's matrices ("X or X?" and "Filters to Detect X Features"), +1 = ink.
# ---------------------------------------------------------------------------------------


def _lecture_matrix(text: str) -> np.ndarray:
    rows = [[float(v) for v in line.split()] for line in text.strip().splitlines()]
    matrix = np.array(rows, dtype=np.float32)
    matrix.setflags(write=False)  # shared constants: copy before editing
    return matrix


XO_CLEAN = _lecture_matrix("""
-1 -1 -1 -1 -1 -1 -1 -1 -1
-1  1 -1 -1 -1 -1 -1  1 -1
-1 -1  1 -1 -1 -1  1 -1 -1
-1 -1 -1  1 -1  1 -1 -1 -1
-1 -1 -1 -1  1 -1 -1 -1 -1
-1 -1 -1  1 -1  1 -1 -1 -1
-1 -1  1 -1 -1 -1  1 -1 -1
-1  1 -1 -1 -1 -1 -1  1 -1
-1 -1 -1 -1 -1 -1 -1 -1 -1
""")
"""The clean X: (9, 9) float32 of -1 (background) and +1 (ink)."""

XO_SHIFTED = _lecture_matrix("""
-1 -1 -1 -1 -1 -1 -1 -1 -1
-1 -1 -1 -1 -1 -1  1 -1 -1
-1  1 -1 -1 -1  1 -1 -1 -1
-1 -1  1  1 -1  1 -1 -1 -1
-1 -1 -1 -1  1 -1 -1 -1 -1
-1 -1 -1  1 -1  1  1 -1 -1
-1 -1 -1  1 -1 -1 -1  1 -1
-1 -1  1 -1 -1 -1 -1 -1 -1
-1 -1 -1 -1 -1 -1 -1 -1 -1
""")
"""The same X shifted and deformed: equal to ``XO_CLEAN`` in only some pixels."""

XO_FILTERS = {
    "diagonal_down": _lecture_matrix("1 -1 -1\n-1 1 -1\n-1 -1 1"),  # "\" stroke
    "crossing": _lecture_matrix("1 -1 1\n-1 1 -1\n1 -1 1"),  # the centre of the X
    "diagonal_up": _lecture_matrix("-1 -1 1\n-1 1 -1\n1 -1 -1"),  # "/" stroke
}
"""The three 3x3 feature filters of the lecture, in slide order."""

# ---------------------------------------------------------------------------------------
# Strokes: each image is a set of line segments in a unit frame, then an affine warp.
# ---------------------------------------------------------------------------------------


def _x_strokes(n: int, g: torch.Generator) -> Tensor:
    """Two diagonal strokes with jittered endpoints: (n, 2 segments, 2 ends, 2)."""
    ends = torch.tensor([[[-1.0, -1.0], [1.0, 1.0]], [[1.0, -1.0], [-1.0, 1.0]]])  # (2, 2, 2)
    return ends + 0.15 * torch.randn(n, 2, 2, 2, generator=g)  # endpoint jitter, unit frame


def _o_strokes(n: int, g: torch.Generator) -> Tensor:
    """A closed, wobbly 16-gon around the unit circle: (n, S, 2, 2)."""
    phase = 2 * math.pi * torch.rand(n, 1, generator=g)
    theta = phase + torch.arange(O_VERTICES) * (2 * math.pi / O_VERTICES)  # (n, S)
    wobble = 0.24 * torch.rand(n, 1, generator=g) - 0.12  # egg/peanut deformation amplitude
    turn = 2 * math.pi * torch.rand(n, 1, generator=g)
    jitter = 0.04 * torch.randn(n, O_VERTICES, generator=g)  # per-vertex wobble
    radius = 1 + wobble * torch.cos(2 * theta + turn) + jitter
    points = torch.stack([radius * torch.cos(theta), radius * torch.sin(theta)], -1)  # (n, S, 2)
    return torch.stack([points, points.roll(-1, dims=1)], 2)  # (n, S, 2 ends, 2)


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def _warp(segments: Tensor, size: int, width: Tensor, g: torch.Generator) -> Tensor:
    """Random scale, aspect, shear, rotation and shift into pixel coordinates."""
    n = len(segments)
    scale = _uniform(n, 0.35, 0.8, g) * (size / 2)  # half-extent in pixels
    aspect = _uniform(n, math.log(0.8), math.log(1.25), g).exp()
    shear = _uniform(n, -0.2, 0.2, g)
    angle = _uniform(n, -math.radians(25), math.radians(25), g)  # at 45 degrees an X becomes a +
    cos, sin = angle.cos(), angle.sin()
    rotate = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    stretch = torch.zeros(n, 2, 2)  # scale, aspect and shear
    stretch[:, 0, 0], stretch[:, 0, 1] = scale * aspect.sqrt(), shear * scale
    stretch[:, 1, 1] = scale / aspect.sqrt()
    points = segments.flatten(1, 2) @ (rotate @ stretch).transpose(1, 2)  # (n, 2S, 2)
    extent = points.abs().amax(1) + width[:, None] / 2  # (n, 2)
    room = (size / 2 - 0.5 - extent).clamp(min=0)  # keep the ink inside the canvas
    centre = (size - 1) / 2 + room * (2 * torch.rand(n, 2, generator=g) - 1)
    return (points + centre[:, None]).view_as(segments)


def _coverage(segments: Tensor, width: Tensor, size: int) -> Tensor:
    """Antialiased ink coverage of strokes ``width`` pixels wide: (n, size * size) in [0, 1]."""
    coords = torch.arange(size, dtype=torch.float32)
    py, px = (c.flatten() for c in torch.meshgrid(coords, coords, indexing="ij"))  # (P,) each
    parts = []
    for seg, w in zip(segments.split(CHUNK), width.split(CHUNK)):
        ax, ay = seg[:, :, 0, 0, None], seg[:, :, 0, 1, None]  # (n, S, 1)
        abx, aby = seg[:, :, 1, 0, None] - ax, seg[:, :, 1, 1, None] - ay
        dx, dy = px - ax, py - ay  # (n, S, P)
        t = ((dx * abx + dy * aby) / (abx * abx + aby * aby).clamp(min=1e-6)).clamp(0, 1)
        distance = ((dx - t * abx).square() + (dy - t * aby).square()).amin(1).sqrt()  # (n, P)
        parts.append((w[:, None] / 2 + 0.5 - distance).clamp(0, 1))
    return torch.cat(parts)


def render_xo(labels: Tensor, g: torch.Generator, size: int = 28) -> Tensor:
    """Draw an O (label 0) or an X (label 1) for each label: uint8 (N, 1, size, size)."""
    n = len(labels)
    width = (1.6 + 1.6 * torch.rand(n, generator=g)) * (size / 28)  # stroke width in pixels
    coverage = torch.empty(n, size * size)
    for label, strokes in ((0, _o_strokes), (1, _x_strokes)):
        idx = (labels == label).nonzero().squeeze(1)
        segments = _warp(strokes(len(idx), g), size, width[idx], g)  # (n, S, 2, 2) in pixels
        coverage[idx] = _coverage(segments, width[idx], size)
    ink = 0.7 + 0.3 * torch.rand(n, 1, generator=g)
    background = 0.2 * torch.rand(n, 1, generator=g)
    noise = (0.02 + 0.06 * torch.rand(n, 1, generator=g)) * torch.randn(coverage.shape, generator=g)
    image = (background + (ink - background) * coverage + noise).clamp(0, 1)
    return (image * 255).round().to(torch.uint8).view(n, 1, size, size)


# ---------------------------------------------------------------------------------------
# The registered dataset
# ---------------------------------------------------------------------------------------


def _split_generator(seed: int, split: str) -> torch.Generator:
    """A torch generator for ``split``'s own stream, derived from ``(seed, split)``."""
    state = np.random.SeedSequence([seed, SPLITS.index(split), 0x5C7D]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


@register_dataset("xo", description="the lecture's X versus O, 28x28 grayscale, shifted, rotated "
                  "and deformed, train 4000 / val 500 / test 1000", tasks=("classify",))
def xo(split: str, seed: int = 0, *, image_size: int = 28) -> TensorImages:
    """Split ``split`` of X-versus-O, generated from ``seed`` in well under a second.

    >>> xo("val").images.shape
    torch.Size([500, 1, 28, 28])
    """
    check_image_size("xo", image_size, 9)
    g = _split_generator(seed, split)
    n = SPLIT_SIZES[split]
    labels = (torch.arange(n) % 2)[torch.randperm(n, generator=g)]  # exactly balanced
    images = render_xo(labels, g, image_size)
    return TensorImages(images, labels, list(CLASSES), name=f"xo/{split}")
