"""What a mask file's values mean for a dataset's classes, and what reading them changed.

    reader = MaskReader(classes=["background", "road"], ignore=None)
    ids = reader.read(mask_path, image_path, (360, 480))   # (H, W) uint8, IGNORE = 255
    reader.report("roads (train)")                          # the lines to print: what was remapped, resized

The rules (DESIGN: data is read as the user meant it or refused, nothing changed unsaid):

* ``ignore``: the one mask value that means "leave this pixel out", only where the layout says
  so (VOC's 255, CamVid's void 11) or ``classes.txt`` does (an ``ignore 255`` line); it becomes
  ``IGNORE``. Without it, 255 is a value like any other.
* A two-class set without an ignore value whose mask holds only 0 and 255 (a binary mask saved
  white on black, gray, RGB or RGBA): 255 is class 1. Counted and said once per split.
* Any other value outside the classes is an error naming the file, the values and the fix.
* A mask at another size than its image but the same aspect ratio (masks exported at a fixed
  width) is resized nearest-neighbour to the image, counted and warned about once per split;
  another aspect ratio is an error naming the file and both sizes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.data.masks import IGNORE, SHOW_FILES, bad_ids, decode_mask, unknown_colors

BINARY_WHITE = 255  # a binary mask's foreground value when saved as an 8-bit image


class PairProblem(Exception):
    """One image/mask pair that cannot be read as meant (collected, then raised for all at once)."""


@dataclass
class MaskReader:
    """Reads a split's masks as class ids by one layout's rules, and tallies what it changed.

    classes: names in id order; colors: their RGB colours, used to convert RGB colour masks when
    ``rgb_masks``; palette: the colours lossy (JPEG) masks snap to; ignore: the mask value meaning
    "ignore" (None: none); ignore_why: where that rule comes from, for messages ("CamVid's void").
    """

    classes: list[str]
    colors: list[tuple[int, int, int]] | None = None
    palette: list[tuple[int, int, int]] | None = None
    ignore: int | None = None
    ignore_why: str = ""
    fix: str = ""  # how the user changes the rules (the layout's classes file), for messages
    binary: int = 0  # masks whose 255 was read as class 1
    resized: list[str] = field(default_factory=list)  # "mask WxH -> WxH" per resized mask
    lossy: int = 0  # JPEG masks with pixels of no exact class value
    changed: int = 0  # their pixels that were snapped to the nearest class
    lossy_pixels: int = 0  # all pixels of those masks
    ignored: int = 0  # pixels holding the ignore value
    pixels: int = 0  # all mask pixels read

    def read(self, mask_path: Path, image_path: Path, image_hw: tuple[int, int]) -> np.ndarray:
        """(H, W) uint8 class ids (and IGNORE) of ``mask_path``, at the image's size ``image_hw``."""
        k = len(self.classes)
        ids, moved = decode_mask(mask_path, self.colors, k, self.palette)
        if moved:
            self.lossy, self.changed, self.lossy_pixels = self.lossy + 1, self.changed + moved, \
                self.lossy_pixels + ids.size
        ids = self._fit(ids, mask_path, image_path, image_hw)
        if self.ignore is None and k == 2 and _only_0_255(ids):
            ids = ids // BINARY_WHITE
            self.binary += 1
        wrong = bad_ids(ids, k, self.ignore)
        if wrong == [IGNORE] and self.colors:  # an RGB mask: IGNORE stands for colours of no class
            found = ", ".join(f"{c} ({n:,} pixels)" for c, n in unknown_colors(mask_path, self.colors))
            raise PairProblem(f"{mask_path} holds colours that are no class's colour in the classes file: {found}; "
                              f"give each its class (a 'name R G B' line), or add 'ignore 255' to leave them out")
        if wrong:
            raise PairProblem(f"{mask_path} has class ids {wrong} outside 0..{k - 1} ({k} classes"
                              f"{self._ignore_words()}); {self._fix(wrong)}")
        if self.ignore is not None:
            hit = ids == self.ignore
            self.ignored += int(hit.sum())
            ids = np.where(hit, IGNORE, ids)
        self.pixels += ids.size
        return ids.astype(np.uint8)

    def _fit(self, ids: np.ndarray, mask_path: Path, image_path: Path, image_hw: tuple[int, int]) -> np.ndarray:
        if ids.shape == tuple(image_hw):
            return ids
        (mh, mw), (ih, iw) = ids.shape, image_hw
        if not same_aspect((mh, mw), (ih, iw)):
            raise PairProblem(f"mask {mask_path} is {mw}x{mh} but image {image_path.name} is {iw}x{ih} "
                              f"(W x H), another aspect ratio; save the mask at the image's size")
        self.resized.append(f"{mask_path.name} {mw}x{mh} -> {iw}x{ih}")
        return resize_nearest(ids, (ih, iw))

    def _ignore_words(self) -> str:
        return f", {self.ignore} = ignore: {self.ignore_why}" if self.ignore is not None else ", no ignore value"

    def _fix(self, wrong: list[int]) -> str:
        if self.fix:
            return self.fix.replace("{value}", str(wrong[0]))
        return "expected ids of the layout's classes only"

    def report(self, where: str) -> tuple[list[str], list[str]]:
        """(report lines, the subset worth a warning): what reading the split's masks changed."""
        lines, warn = [], []
        if self.binary:
            lines.append(f"{where}: {_count(self.binary, 'binary mask')} with only 0 and 255: 255 read as class 1 "
                         f"({self.classes[1]}), 0 as class 0 ({self.classes[0]})")
        if self.resized:
            more = f", and {len(self.resized) - SHOW_FILES} more" if len(self.resized) > SHOW_FILES else ""
            lines.append(f"{where}: {_count(len(self.resized), 'mask')} at another size than its image (same aspect "
                         f"ratio) resized nearest-neighbour to it: {', '.join(self.resized[:SHOW_FILES])}{more}")
            warn.append(lines[-1])
        if self.changed:
            lines.append(f"{where}: lossy (JPEG) masks: {self.changed:,} pixels in {self.lossy} masks "
                         f"({100 * self.changed / self.lossy_pixels:.2f}% of theirs) held no exact class value "
                         f"and were mapped to the nearest class (save masks as PNG to keep them exact)")
            warn.append(lines[-1])
        if self.ignored:
            lines.append(f"{where}: {self.ignored:,} pixels ({100 * self.ignored / self.pixels:.1f}%) hold "
                         f"{self.ignore} ({self.ignore_why}): left out of the loss and the metrics")
        return lines, warn


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _only_0_255(ids: np.ndarray) -> bool:
    """A binary mask saved white on black: values 0 and 255 only, 255 present."""
    values = np.unique(ids)
    return BINARY_WHITE in values and set(values.tolist()) <= {0, BINARY_WHITE}


def same_aspect(mask_hw: tuple[int, int], image_hw: tuple[int, int]) -> bool:
    """True when a mask of ``mask_hw`` is the image's ``image_hw`` scaled (each side within rounding)."""
    (mh, mw), (ih, iw) = mask_hw, image_hw
    return abs(ih * mw / iw - mh) < 1 and abs(iw * mh / ih - mw) < 1


def resize_nearest(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) ids -> ``size`` (H, W), nearest neighbour (pixel centres), values unchanged."""
    (h, w), (out_h, out_w) = ids.shape, size
    rows = np.minimum(((np.arange(out_h) + 0.5) * h / out_h).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(out_w) + 0.5) * w / out_w).astype(np.int64), w - 1)
    return ids[rows[:, None], cols[None, :]]
