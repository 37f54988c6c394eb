"""``cnnlab pixels``: an image as the matrix of numbers a computer sees."""
from __future__ import annotations

import argparse

from cnnlab.cli.common import ints


def add(sub) -> argparse.ArgumentParser:
    x = sub.add_parser("pixels", help="print an image as the matrix of numbers a computer sees")
    x.add_argument("image")
    x.add_argument("--crop", metavar="X,Y,W,H", help="a crop box in pixels")
    x.add_argument("--size", type=int, help="resize so the longer side is N pixels")
    return x


def run(a) -> int:
    from cnnlab import api

    crop = tuple(ints(a.crop, 4, "--crop", "X,Y,W,H")) if a.crop else None
    grid, (h, w, c) = api.pixels(a.image, crop=crop, size=a.size)
    print(grid)
    print(f"{a.image}: {h} x {w} x {c} (H x W x C)")
    return 0
