"""The one internal format for detection data, and the annotation checks every reader runs.

``DetectionImages``: images held in memory as one uint8 (N, C, H, W) tensor (batches are
sliced by index, as for classification) and, per image, a target dict in torchvision's
detection format: ``boxes`` float (K, 4) as (x0, y0, x1, y1) in pixels, ``labels`` int64 (K,)
with 1..len(classes) (0 is the background class, as in torchvision's R-CNN models).

Readers (COCO JSON, Pascal VOC XML, YOLO txt; ``cnnlab.data.formats.boxes``) first collect
``Annotated`` records in each image's own pixel coordinates, then ``check_annotations`` cleans
them and writes a report, and ``to_detection_images`` resizes images and boxes to one size.
"""
from __future__ import annotations

import warnings

from dataclasses import dataclass, field

import torch
from torch import Tensor

from cnnlab.errors import CnnlabError

OUT_OF_IMAGE = ("clip", "reject")  # what to do with boxes that leave the image
MAX_CLASSES = 100_000          # classes a detection set may name (ImageNet-21k has 21,841)
MAX_BOXES_PER_IMAGE = 10_000   # boxes one image may hold (crowded COCO images hold a few hundred)
# pixels: a kept box is wider and higher than this. A narrower one outlines nothing: zero or
# negative sides, a box left with none inside the image, or a VOC point (xmin == xmax, which the
# 1-based inclusive VOC coordinates make one pixel wide).
MIN_SIDE = 1.0


@dataclass
class DetectionImages:
    """A detection split held in memory.

    images: (N, C, H, W) uint8; targets: per image {"boxes": (K, 4) float, "labels": (K,) int64};
    classes: names of labels 1..len(classes); files: the source of each image (for reports).
    """

    images: Tensor
    targets: list[dict[str, Tensor]]
    classes: list[str]
    name: str = ""
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unreadable images left out (--skip-bad)
    report: list[str] = field(default_factory=list)   # what the annotation checks changed
    source_sizes: list[tuple[int, int]] = field(default_factory=list)  # each image's (H, W) on disk
    degenerate: dict[str, list[str]] = field(default_factory=dict)  # file -> its dropped boxes, described

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"{self.name}: images must be a uint8 (N, C, H, W) tensor, "
                             f"got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.images) != len(self.targets):
            raise ValueError(f"{self.name}: {len(self.images)} images but {len(self.targets)} targets")

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # (C, H, W)

    @property
    def labels(self) -> Tensor:
        """All box labels, shifted to 0..K-1 (for per-class counts)."""
        return torch.cat([t["labels"] for t in self.targets] + [torch.zeros(0, dtype=torch.int64)]) - 1

    def subset(self, index: Tensor, name: str | None = None) -> "DetectionImages":
        idx = index.tolist()
        files = [self.files[i] for i in idx] if self.files else []
        sizes = [self.source_sizes[i] for i in idx] if self.source_sizes else []
        names = set(files)
        return DetectionImages(self.images[index], [self.targets[i] for i in idx], self.classes,
                               name or self.name, files, source_sizes=sizes,
                               degenerate={f: d for f, d in self.degenerate.items() if f in names})

    def box_counts(self) -> dict[str, int]:
        counts = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, counts))

    def describe(self) -> dict:
        """For ``cnnlab data info``: images, boxes per class, negatives, the checks' report."""
        return {"name": self.name, "count": len(self), "classes": list(self.classes),
                "class_counts": self.box_counts(), "boxes": int(sum(len(t["boxes"]) for t in self.targets)),
                "negatives": sum(1 for t in self.targets if not len(t["boxes"])),
                "image_shape": self.image_shape, "in_memory": True, "skipped": len(self.skipped),
                "report": list(self.report)}

    def sample_grid(self, path, n: int = 16, seed: int = 0):
        """A PNG grid of up to 16 random images (by seed) with their boxes and class names drawn."""
        import math

        from torchvision.utils import draw_bounding_boxes, make_grid

        from cnnlab.images import save_image

        index = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:min(n, 16)].tolist()
        tiles = []
        for i in index:
            img = self.images[i, :3] if self.images.shape[1] >= 3 else self.images[i, :1].expand(3, -1, -1)
            k = max(1, math.ceil(128 / max(img.shape[1:])))  # enlarge small images (nearest) for legible labels
            img = img.repeat_interleave(k, 1).repeat_interleave(k, 2).contiguous()
            t = self.targets[i]
            if len(t["boxes"]):
                img = draw_bounding_boxes(img, t["boxes"] * k, [self.classes[j - 1] for j in t["labels"].tolist()],
                                          colors="yellow", width=2)
            tiles.append(img)
        side = max(max(t.shape[1:]) for t in tiles)
        tiles = [torch.nn.functional.pad(t, (0, side - t.shape[2], 0, side - t.shape[1]), value=255) for t in tiles]
        return save_image(make_grid(torch.stack(tiles), nrow=math.ceil(math.sqrt(len(tiles))), padding=2,
                                    pad_value=255), path)


@dataclass
class Annotated:
    """One image as a reader found it: file, size, and boxes (x0, y0, x1, y1) in its pixels.

    ``categories`` are the file's own category ids or names, mapped to labels by the checks.
    """

    file: str
    width: int
    height: int
    boxes: list[list[float]]
    categories: list
    image_id: object = None


# ---------------------------------------------------------------------------------------
# Annotation checks
# ---------------------------------------------------------------------------------------


def box_faults(boxes: Tensor, width: int, height: int) -> tuple[Tensor, Tensor, list[str]]:
    """Boxes (K, 4) of an image ``width`` x ``height`` -> (clipped to the image, kept mask (K,),
    why each dropped box is dropped: "zero width", "negative height", "outside the image", ...)."""
    inside = boxes.clone()
    inside[:, 0::2] = inside[:, 0::2].clamp(0, width)
    inside[:, 1::2] = inside[:, 1::2].clamp(0, height)
    keep = (inside[:, 2] - inside[:, 0] > MIN_SIDE) & (inside[:, 3] - inside[:, 1] > MIN_SIDE)
    why = []
    for (x0, y0, x1, y1), (cx0, cy0, cx1, cy1) in zip(boxes[~keep].tolist(), inside[~keep].tolist()):
        w, h = x1 - x0, y1 - y0
        faults = [f"{'negative' if s < 0 else 'zero'} {side}" for s, side in ((w, "width"), (h, "height")) if s <= 0]
        faults += [f"{side} {s:g} pixel" for s, side in ((w, "width"), (h, "height")) if 0 < s <= MIN_SIDE]
        why.append(", ".join(faults) if faults else "outside the image" if cx1 - cx0 <= 0 or cy1 - cy0 <= 0
                   else "a sliver inside the image")
    return inside, keep, why


def degenerate_boxes(records: list[Annotated]) -> dict[str, list[str]]:
    """File -> a line per box the checks drop: its category, (x0, y0, x1, y1) in the file's pixels, why."""
    out = {}
    for r in records:
        b = torch.tensor(r.boxes, dtype=torch.float32).reshape(-1, 4)  # (K, 4)
        _, keep, why = box_faults(b, r.width, r.height)
        dropped = (~keep).nonzero().flatten().tolist()
        if dropped:
            out[r.file] = [f"{r.categories[i]} ({', '.join(f'{v:g}' for v in r.boxes[i])}): {w}"
                           for i, w in zip(dropped, why)]
    return out


def check_annotations(records: list[Annotated], category_ids: dict, source: str,
                      out_of_image: str = "clip") -> tuple[list[dict[str, Tensor]], list[str]]:
    """Validate and clean boxes; returns per-record targets and the report lines.

    Errors (one ``CnnlabError`` naming the files and counts): duplicate image ids, unknown
    category ids, and, with ``out_of_image="reject"``, boxes that leave the image. Cleaned
    and reported: boxes clipped to the image (``"clip"``), degenerate boxes (dropped: zero,
    negative or at most ``MIN_SIDE`` wide or high, also after clipping; ``degenerate_boxes`` says
    which and why). Images without boxes are kept as negatives and counted.
    """
    if out_of_image not in OUT_OF_IMAGE:
        raise CnnlabError(f"out_of_image {out_of_image!r}: expected one of {', '.join(OUT_OF_IMAGE)}")
    seen: dict = {}
    duplicates = []
    for r in records:
        if r.image_id is not None:
            if r.image_id in seen:
                duplicates.append(f"{r.image_id} ({seen[r.image_id]}, {r.file})")
            seen[r.image_id] = r.file
    if duplicates:
        raise CnnlabError(f"{source}: {len(duplicates)} duplicate image ids: {_few(duplicates)}")
    unknown = {}
    for r in records:
        bad = [c for c in r.categories if c not in category_ids]
        if bad:
            unknown[r.file] = bad
    if unknown:
        ids = sorted({str(c) for v in unknown.values() for c in v})
        raise CnnlabError(f"{source}: unknown category ids {_few(ids)} in {len(unknown)} files: "
                          f"{_few([f'{f} ({len(v)})' for f, v in unknown.items()])}; "
                          f"known: {', '.join(map(str, category_ids))}")

    clipped, dropped, outside, negatives = {}, {}, {}, 0
    targets = []
    for r in records:
        b = torch.tensor(r.boxes, dtype=torch.float32).reshape(-1, 4)  # (K, 4)
        labels = torch.tensor([category_ids[c] for c in r.categories], dtype=torch.int64)
        inside, keep, _ = box_faults(b, r.width, r.height)
        moved = (inside != b).any(1) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        if moved.any():
            (outside if out_of_image == "reject" else clipped)[r.file] = int(moved.sum())
        if (~keep).any():
            dropped[r.file] = int((~keep).sum())
        if not len(b) or not keep.any():
            negatives += 1
        targets.append({"boxes": inside[keep], "labels": labels[keep]})
    if outside:
        raise CnnlabError(f"{source}: {sum(outside.values())} boxes outside the image in {len(outside)} "
                          f"files: {_few([f'{f} ({n})' for f, n in outside.items()])} "
                          f"(use out_of_image='clip' to clip them)")
    report = []
    if clipped:
        report.append(f"{source}: clipped {sum(clipped.values())} boxes to the image in {len(clipped)} files: "
                      f"{_few([f'{f} ({n})' for f, n in clipped.items()])}")
    if dropped:
        report.append(f"{source}: dropped {sum(dropped.values())} boxes of zero or negative area (or at most "
                      f"{MIN_SIDE:g} pixel wide or high inside the image) in "
                      f"{len(dropped)} files: {_few([f'{f} ({n})' for f, n in dropped.items()])}")
    for line in report:  # boxes changed or lost: worth a warning (`data check` counts it)
        warnings.warn(line, stacklevel=3)
    if negatives:
        report.append(f"{source}: {negatives} images without boxes, kept as negatives")
    return targets, report


def _few(items: list[str], n: int = 5) -> str:
    return few(items, n)


def few(items: list, n: int = 3) -> str:
    """``a, b, c and 4 more``: the first ``n`` items of a list, for one-line messages."""
    return ", ".join(map(str, items[:n])) + (f" and {len(items) - n} more" if len(items) > n else "")


def check_classes(classes: list[str], source: str) -> list[str]:
    """``classes`` when a detector can be built over them: some, at most ``MAX_CLASSES``, no name twice."""
    if not classes:
        raise CnnlabError(f"{source}: no classes; a detection set needs at least one class name")
    if len(classes) > MAX_CLASSES:
        raise CnnlabError(f"{source}: {len(classes):,} classes; at most {MAX_CLASSES:,} are supported")
    seen: dict[str, int] = {}
    for c in classes:
        seen[c] = seen.get(c, 0) + 1
    twice = [f"{c!r} ({n}x)" for c, n in seen.items() if n > 1]
    if twice:
        raise CnnlabError(f"{source}: duplicate class names {few(twice)}; each class needs its own name")
    return classes


def too_many_boxes(where: str, n: int) -> CnnlabError:
    """The error for an image whose annotation holds more than ``MAX_BOXES_PER_IMAGE`` boxes."""
    return CnnlabError(f"{where}: more than {MAX_BOXES_PER_IMAGE:,} boxes on one image ({n:,} so far); "
                       f"refused as a malformed annotation")


# ---------------------------------------------------------------------------------------
# Resizing to one size
# ---------------------------------------------------------------------------------------


def to_detection_images(records: list[Annotated], targets: list[dict[str, Tensor]], classes: list[str],
                        size: tuple[int, int], channels: int = 3, name: str = "", report=(),
                        skip_bad: bool = False) -> DetectionImages:
    """Decode every image, resize it to ``size`` (H, W) and scale its boxes alike."""
    from cnnlab.images import ImageError, read_image, resize

    h, w = size
    images, kept, files, skipped, sizes = [], [], [], [], []
    for r, t in zip(records, targets):
        try:
            img = read_image(r.file, channels=channels)
        except ImageError:
            if not skip_bad:
                raise
            skipped.append(r.file)
            continue
        ih, iw = img.shape[1:]
        scale = torch.tensor([w / iw, h / ih, w / iw, h / ih])
        images.append(resize(img, (h, w)))
        kept.append({"boxes": t["boxes"] * scale, "labels": t["labels"]})
        files.append(r.file)
        sizes.append((ih, iw))
    if not images:
        raise CnnlabError(f"{name}: no readable images")
    degenerate = {f: d for f, d in degenerate_boxes(records).items() if f not in skipped}
    return DetectionImages(torch.stack(images), kept, classes, name, files, skipped, list(report), sizes, degenerate)
