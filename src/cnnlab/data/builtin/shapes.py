"""Synthetic scenes of coloured shapes, fully annotated for every task.

A ``Scene`` holds a uint8 (3, H, W) image on a noisy, shaded background, its objects
(shape, colour, size word, tight box and visible mask each) and reference captions
computed from them ("a small red circle left of a large blue square"). Segmentation
uses ``semantic_mask()``, detection ``boxes``/``labels``, captioning ``captions``.

    scenes = generate_scenes(1000, seed=0)           # 64x64 scenes with 1..3 objects
    scenes[0].captions, scenes[0].semantic_mask()   # list[str], (64, 64) int64

The registered ``shapes`` dataset is the one-object variant for classification:
32x32 RGB (small enough to train in seconds on a CPU), label = the shape kind
(classes ``SHAPES``), train 5,000 / val 500 / test 1,000, each split from its own
seed stream derived from ``(seed, split)``; kinds balanced to within one image.

Shapes are rasterised from signed distance functions (after Inigo Quilez's 2D
distance functions), all objects of one kind at once, with antialiased edges; an
object's mask is its pixels with coverage >= 0.5 that no later object covers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from cnnlab.data.base import TensorImages
from cnnlab.data.registry import SPLITS, check_image_size, register_dataset
from cnnlab.errors import CnnlabError

SHAPES = ["circle", "square", "triangle", "cross", "star", "heart"]
PALETTE = {  # colour name -> RGB
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 90, 225),
    "yellow": (240, 210, 40), "purple": (150, 60, 200), "orange": (250, 140, 30),
}
COLORS = list(PALETTE)
SIZES = {"small": (0.12, 0.16), "large": (0.22, 0.30)}  # circumradius, fraction of image size
SPLIT_SIZES = {"train": 5000, "val": 500, "test": 1000}
MIN_VISIBLE = 0.5  # each object keeps at least this fraction of its own pixels visible
CHUNK = 256  # scenes rendered at once: bounds the (chunk, objects, H, W) tensors
COUNT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
PLURALS = {"cross": "crosses"}  # others add "s"


@dataclass
class ShapeObject:
    """One object: box is (x0, y0, x1, y1) in pixels with x1, y1 exclusive (tight around mask)."""

    shape: str
    color: str
    size: str  # "small" or "large"
    box: tuple[int, int, int, int]
    mask: Tensor  # (H, W) bool, the visible pixels

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2

    @property
    def phrase(self) -> str:
        return f"a {self.size} {self.color} {self.shape}"


@dataclass
class Scene:
    """An image (3, H, W) uint8, its objects in drawing order (later on top) and captions."""

    image: Tensor
    objects: list[ShapeObject]
    captions: list[str]

    def semantic_mask(self) -> Tensor:
        """(H, W) int64: 0 = background, 1 + SHAPES index where an object is visible."""
        out = torch.zeros(self.image.shape[1:], dtype=torch.int64)
        for obj in self.objects:
            out[obj.mask] = 1 + SHAPES.index(obj.shape)
        return out

    @property
    def instance_masks(self) -> Tensor:
        return torch.stack([obj.mask for obj in self.objects])  # (K, H, W) bool

    @property
    def boxes(self) -> Tensor:
        return torch.tensor([obj.box for obj in self.objects], dtype=torch.float32)  # (K, 4)

    @property
    def labels(self) -> Tensor:
        """(K,) int64: 1 + SHAPES index, as in the semantic mask (0 is background)."""
        return torch.tensor([1 + SHAPES.index(obj.shape) for obj in self.objects])


# ---------------------------------------------------------------------------------------
# Signed distance functions in a unit frame (y up, circumradius about 1; < 0 inside)
# ---------------------------------------------------------------------------------------


def _circle(x: Tensor, y: Tensor) -> Tensor:
    return torch.hypot(x, y) - 0.85


def _square(x: Tensor, y: Tensor) -> Tensor:
    dx, dy = x.abs() - 0.7, y.abs() - 0.7
    return torch.hypot(dx.clamp(min=0), dy.clamp(min=0)) + torch.maximum(dx, dy).clamp(max=0)


def _triangle(x: Tensor, y: Tensor) -> Tensor:
    k, r = math.sqrt(3), 0.9  # r: half the side; pointing up, centroid at the origin
    x, y = x.abs() - r, y + r / k
    fold = x + k * y > 0
    x, y = torch.where(fold, (x - k * y) / 2, x), torch.where(fold, (-k * x - y) / 2, y)
    x = x - x.clamp(-2 * r, 0)
    return -torch.hypot(x, y) * torch.sign(y)


def _cross(x: Tensor, y: Tensor) -> Tensor:
    x, y = x.abs(), y.abs()  # an "X": two diagonal bars of half-width 0.24
    m = (x + y).clamp(max=1.15) / 2
    return torch.hypot(x - m, y - m) - 0.24


def _star(x: Tensor, y: Tensor) -> Tensor:
    r, inner = 1.05, 0.5  # outer radius, inner/outer ratio; five points, one up
    k1x, k1y = 0.809016994375, -0.587785252292
    x = x.abs()
    for kx in (k1x, -k1x):  # fold the plane into one point's wedge
        d = (kx * x + k1y * y).clamp(min=0)
        x, y = x - 2 * d * kx, y - 2 * d * k1y
    x, y = x.abs(), y - r
    bx, by = -inner * k1y, inner * k1x - 1
    h = ((x * bx + y * by) / (bx * bx + by * by)).clamp(0, r)
    return torch.hypot(x - bx * h, y - by * h) * torch.sign(y * bx - x * by)


def _heart(x: Tensor, y: Tensor) -> Tensor:
    s = 0.62  # the heart below spans y in [0, 1.1]: scale and centre it
    x, y = x.abs() * s, y * s + 0.5
    lobe = torch.hypot(x - 0.25, y - 0.75) - math.sqrt(2) / 4
    m = (x + y).clamp(min=0) / 2
    tip = torch.minimum(x * x + (y - 1) ** 2, (x - m) ** 2 + (y - m) ** 2).sqrt()
    tip = tip * torch.sign(x - y)
    return torch.where(x + y > 1, lobe, tip) / s


SDF = {"circle": _circle, "square": _square, "triangle": _triangle,
       "cross": _cross, "star": _star, "heart": _heart}


# ---------------------------------------------------------------------------------------
# Layout: which objects, where (rejection sampling on circumscribed circles)
# ---------------------------------------------------------------------------------------


@dataclass
class _Placement:
    kind: int  # SHAPES index
    color: int  # COLORS index
    large: bool
    radius: float  # circumradius in pixels
    angle: float  # radians
    cx: float
    cy: float


def _sample_layout(rng: np.random.Generator, size: int, n_objects: int, overlap: float,
                   kinds: list[int] | None = None) -> list[_Placement]:
    """Place ``n_objects`` inside the image; circumscribed circles may overlap by ``overlap``
    of the smaller object's diameter. Restarts the scene when an object does not fit."""
    for _ in range(200):  # restarts; real layouts need a few at most
        placed: list[_Placement] = []
        for i in range(n_objects):
            for _ in range(100):
                kind = kinds[i] if kinds is not None else int(rng.integers(len(SHAPES)))
                color, large = int(rng.integers(len(COLORS))), bool(rng.random() < 0.5)
                if any((p.kind, p.color, p.large) == (kind, color, large) for p in placed):
                    continue  # no two identical descriptions: captions stay unambiguous
                radius = rng.uniform(*SIZES["large" if large else "small"]) * size
                cx, cy = rng.uniform(radius - 0.5, size - 0.5 - radius, size=2).tolist()
                if all(math.hypot(cx - p.cx, cy - p.cy)
                       >= radius + p.radius - 2 * overlap * min(radius, p.radius) for p in placed):
                    angle = rng.uniform(-math.radians(25), math.radians(25))
                    placed.append(_Placement(kind, color, large, radius, angle, cx, cy))
                    break
            else:
                break  # this object did not fit: start the scene again
        if len(placed) == n_objects:
            return placed
    raise CnnlabError(f"cannot fit {n_objects} shapes in a {size}x{size} image; "
                      f"use fewer objects, a larger size or more overlap")


# ---------------------------------------------------------------------------------------
# Rendering: all objects of one kind at once, then composite slot by slot
# ---------------------------------------------------------------------------------------


def _render(layouts: list[list[_Placement]], size: int, k: int,
            g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Images (N, 3, H, W) uint8, visible masks (N, k, H, W) bool and, per scene, whether
    every object keeps MIN_VISIBLE of its pixels in view (N,) bool."""
    n = len(layouts)
    objs = [(i, j, p) for i, lay in enumerate(layouts) for j, p in enumerate(lay)]
    scene, slot = torch.tensor([o[0] for o in objs]), torch.tensor([o[1] for o in objs])
    param = torch.tensor([[p.kind, p.large, p.radius, p.angle, p.cx, p.cy] for _, _, p in objs])
    rgb = torch.tensor([PALETTE[COLORS[p.color]] for _, _, p in objs], dtype=torch.float32)
    rgb = (rgb + 24 * torch.rand(rgb.shape, generator=g) - 12).clamp(0, 255)  # colour jitter

    alpha = torch.zeros(n, k, size, size)
    coords = torch.arange(size, dtype=torch.float32)
    for kind, name in enumerate(SHAPES):
        for large, size_word in enumerate(SIZES):  # (0, "small"), (1, "large"): one window each
            idx = ((param[:, 0] == kind) & (param[:, 1] == large)).nonzero().squeeze(1)
            radius, angle, cx, cy = (param[idx, c, None, None] for c in range(2, 6))  # (M, 1, 1)
            win = min(size, math.ceil(2.2 * SIZES[size_word][1] * size) + 2)  # covers every shape
            xs = (cx - win / 2).round().clamp(0, size - win) + coords[:win]  # (M, 1, win)
            ys = (cy - win / 2).round().clamp(0, size - win) + coords[:win, None]  # (M, win, 1)
            dx, dy = xs - cx, ys - cy
            u = (dx * angle.cos() + dy * angle.sin()) / radius  # (M, win, win)
            v = (dx * angle.sin() - dy * angle.cos()) / radius  # y up in the shape's frame
            sdf = SDF[name](u, v) * radius  # signed distance in pixels
            at = scene[idx, None, None], slot[idx, None, None], ys.long(), xs.long()
            alpha[at] = (0.5 - sdf).clamp(0, 1)  # antialiased coverage
    color = torch.zeros(n, k, 3, 1, 1)
    color[scene, slot] = rgb[:, :, None, None]

    image = _background(n, size, g)  # (N, 3, H, W) float in 0..255
    for j in range(k):
        a = alpha[:, j, None]  # (N, 1, H, W)
        image = image * (1 - a) + color[:, j] * a
    noise = 2 + 4 * torch.rand(n, 1, 1, 1, generator=g)  # pixel noise std, in 0..255 units
    image = (image + noise * torch.randn(image.shape, generator=g)).clamp(0, 255)

    own = alpha >= 0.5  # (N, k, H, W) each object's own pixels
    masks = own.clone()
    for j in range(k - 1):  # later objects hide earlier ones
        masks[:, j] &= ~own[:, j + 1:].any(1)
    ok = (masks.sum((-1, -2)) >= MIN_VISIBLE * own.sum((-1, -2))).all(1)
    return image.round().to(torch.uint8), masks, ok


def _background(n: int, size: int, g: torch.Generator) -> Tensor:
    """Grey-ish backgrounds with a tint and a linear shading gradient: (N, 3, H, W) float."""
    base = 70 + 110 * torch.rand(n, 1, 1, 1, generator=g)
    tint = 24 * torch.rand(n, 3, 1, 1, generator=g) - 12
    theta = 2 * math.pi * torch.rand(n, 1, 1, 1, generator=g)
    ramp = torch.linspace(-0.5, 0.5, size)
    gradient = theta.cos() * ramp[None, :] + theta.sin() * ramp[:, None]  # (N, 1, H, W)
    strength = 40 * torch.rand(n, 1, 1, 1, generator=g)  # 0..40 grey levels across the image
    return base + tint + strength * gradient


def _draw(rng: np.random.Generator, sample: Callable[[int], list[_Placement]], n: int, size: int,
          k: int) -> tuple[Tensor, Tensor, list[list[_Placement]]]:
    """Sample ``n`` layouts with ``sample(i)``, render them, and redraw any scene in which
    an object is too hidden. Returns images, visible masks and the layouts."""
    layouts = [sample(i) for i in range(n)]
    g = torch.Generator().manual_seed(int(rng.integers(2**62)))
    images, masks, ok = _render(layouts, size, k, g)
    while not ok.all():
        redo = (~ok).nonzero().squeeze(1)
        for i in redo.tolist():
            layouts[i] = sample(i)
        redrawn = [layouts[i] for i in redo.tolist()]
        images[redo], masks[redo], ok[redo] = _render(redrawn, size, k, g)
    return images, masks, layouts


def _tight_boxes(masks: Tensor) -> Tensor:
    """(..., H, W) bool -> (..., 4) int64 boxes (x0, y0, x1, y1), x1 and y1 exclusive."""
    rows, cols = masks.any(-1).int(), masks.any(-2).int()  # (..., H), (..., W)
    y0, y1 = rows.argmax(-1), rows.shape[-1] - rows.flip(-1).argmax(-1)
    x0, x1 = cols.argmax(-1), cols.shape[-1] - cols.flip(-1).argmax(-1)
    return torch.stack([x0, y0, x1, y1], -1)


# ---------------------------------------------------------------------------------------
# Captions: counts, colours, sizes and spatial relations, computed from the boxes
# ---------------------------------------------------------------------------------------

POSITIONS = [["in the top left", "at the top", "in the top right"],
             ["on the left", "in the centre", "on the right"],
             ["in the bottom left", "at the bottom", "in the bottom right"]]


def relation(a: ShapeObject, b: ShapeObject) -> str | None:
    """Where ``a`` is relative to ``b`` along the axis where their box centres differ
    most: "left of", "right of", "above" or "below"; None when the centres nearly coincide."""
    (ax, ay), (bx, by) = a.center, b.center
    dx, dy = ax - bx, ay - by
    if max(abs(dx), abs(dy)) < 1:
        return None
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def _count(n: int, noun: str) -> str:
    return f"{COUNT_WORDS[n]} {noun if n == 1 else PLURALS.get(noun, noun + 's')}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def scene_captions(objects: list[ShapeObject], size: int) -> list[str]:
    """Reference captions: a listing, counts by shape and colour, and spatial relations.

    For a small red circle left of a large blue square: ["two shapes: a small red circle
    and a large blue square", "one circle and one square", "one red shape and one blue
    shape", "a small red circle left of a large blue square", "there is a large blue square
    to the right of a small red circle"]. One object: its phrase and where it is.
    """
    objs = sorted(objects, key=lambda o: o.center)  # reading order, left to right
    listing = f"{_count(len(objs), 'shape')}: {_join([o.phrase for o in objs])}"
    if len(objs) == 1:
        (o,) = objs
        x, y = o.center
        where = POSITIONS[min(int(3 * y / size), 2)][min(int(3 * x / size), 2)]
        return [o.phrase, listing, f"there is {o.phrase} {where}", f"a {o.color} {o.shape} {where}"]
    by_shape = {s: sum(o.shape == s for o in objs) for s in dict.fromkeys(o.shape for o in objs)}
    by_color = {c: sum(o.color == c for o in objs) for c in dict.fromkeys(o.color for o in objs)}
    out = [listing, _join([_count(n, s) for s, n in by_shape.items()]),
           _join([_count(n, f"{c} shape") for c, n in by_color.items()])]
    pairs = [(a, b, relation(a, b)) for a, b in zip(objs, objs[1:])]
    out += [f"{a.phrase} {rel} {b.phrase}" for a, b, rel in pairs if rel]
    back = relation(objs[1], objs[0])
    if back:
        back = f"to the {back}" if back in ("left of", "right of") else back
        out.append(f"there is {objs[1].phrase} {back} {objs[0].phrase}")
    return out


# ---------------------------------------------------------------------------------------
# Public generators and the registered one-object classification dataset
# ---------------------------------------------------------------------------------------


def generate_scene(rng: np.random.Generator, size: int = 64, min_objects: int = 1,
                   max_objects: int = 3, overlap: float = 0.3) -> Scene:
    """One scene drawn with ``rng``. ``overlap`` (0 <= overlap < 1): how much of the smaller
    object's diameter may reach into another's circumscribed circle (0 = apart)."""
    return _scenes(rng, 1, size, min_objects, max_objects, overlap)[0]


def generate_scenes(n: int, seed: int, size: int = 64, min_objects: int = 1,
                    max_objects: int = 3, overlap: float = 0.3) -> list[Scene]:
    """``n`` scenes, the same for the same arguments. 1,000 64x64 scenes take about a second.

    >>> scenes = generate_scenes(8, seed=0)
    >>> scenes[0].image.shape, scenes[0].semantic_mask().shape
    (torch.Size([3, 64, 64]), torch.Size([64, 64]))
    """
    rng = np.random.default_rng(seed)
    scenes: list[Scene] = []
    for start in range(0, n, CHUNK):
        scenes += _scenes(rng, min(CHUNK, n - start), size, min_objects, max_objects, overlap)
    return scenes


def _scenes(rng: np.random.Generator, n: int, size: int, min_objects: int, max_objects: int,
            overlap: float) -> list[Scene]:
    if not 1 <= min_objects <= max_objects < len(COUNT_WORDS):
        raise CnnlabError(f"need 1 <= min_objects <= max_objects <= {len(COUNT_WORDS) - 1}, "
                          f"got {min_objects} and {max_objects}")
    if not 0 <= overlap < 1 or size < 16:
        raise CnnlabError(f"need 0 <= overlap < 1 and size >= 16, got {overlap} and {size}")

    def sample(_: int) -> list[_Placement]:
        return _sample_layout(rng, size, int(rng.integers(min_objects, max_objects + 1)), overlap)

    images, masks, layouts = _draw(rng, sample, n, size, max_objects)
    boxes = _tight_boxes(masks).tolist()  # (N, K, 4)
    scenes = []
    for i, layout in enumerate(layouts):
        objects = [ShapeObject(SHAPES[p.kind], COLORS[p.color], "large" if p.large else "small",
                               tuple(boxes[i][j]), masks[i, j].clone())
                   for j, p in enumerate(layout)]
        scenes.append(Scene(images[i].clone(), objects, scene_captions(objects, size)))
    return scenes


@register_dataset("shapes", description="one coloured shape per 32x32 RGB image, 6 kinds (circle, "
                  "square, triangle, cross, star, heart), train 5000 / val 500 / test 1000",
                  tasks=("classify",))
def shapes(split: str, seed: int = 0, *, image_size: int = 32) -> TensorImages:
    """Split ``split`` of the one-object shapes set: label = SHAPES index of the shape.

    >>> shapes("val").images.shape
    torch.Size([500, 3, 32, 32])
    """
    check_image_size("shapes", image_size, 16)
    rng = np.random.default_rng([seed, SPLITS.index(split), 0x5A9E])  # one stream per split
    n = SPLIT_SIZES[split]
    kinds = rng.permutation(np.arange(n) % len(SHAPES)).tolist()  # balanced to within one
    images = []
    for start in range(0, n, CHUNK):
        chunk = kinds[start:start + CHUNK]
        images.append(_draw(rng, lambda i: _sample_layout(rng, image_size, 1, 0.0, [chunk[i]]),
                            len(chunk), image_size, 1)[0])
    labels = torch.tensor(kinds, dtype=torch.int64)
    return TensorImages(torch.cat(images), labels, list(SHAPES), name=f"shapes/{split}")
