"""``cnnlab convolve``: hand-made kernels slid over an image; ``--explain`` walks through the arithmetic."""
from __future__ import annotations

import argparse

from cnnlab.errors import CnnlabError


def add(sub) -> argparse.ArgumentParser:
    c = sub.add_parser("convolve", help="slide hand-made kernels over an image; --explain walks through it")
    c.add_argument("image", nargs="?", help="an image file (with --explain: a matrix 'a,b;c,d')")
    c.add_argument("--kernel", action="append", metavar="NAME|MATRIX",
                   help="a kernel name (sharpen, edge, strong-edge, sobel-x, x-crossing, ...) or 'a,b,c;d,e,f;g,h,i'; repeat for more")
    c.add_argument("--stride", type=int, default=1)
    c.add_argument("--padding", type=int, help="zero padding (default: same size for images, 0 with --explain)")
    c.add_argument("--out", default="feature_maps.png", help="the figure to write")
    c.add_argument("--explain", action="store_true", help="print the lecture's step-by-step computation")
    return c


def run(a) -> int:
    from cnnlab import api

    if a.explain:
        print(api.explain_convolution(image=a.image if a.image and ";" in a.image else None,
                                      kernel=a.kernel[0] if a.kernel else None,
                                      stride=a.stride, padding=a.padding or 0))
        return 0
    if not a.image:
        raise CnnlabError("convolve: give an IMAGE (or --explain for the lecture's 5x5 walk-through)")
    r = api.convolve(a.image, a.kernel or ["edge"], stride=a.stride, padding=a.padding, out=a.out)
    h, w = r["input"].shape
    print(f"{a.image}: {h} x {w} input, stride {r['stride']}, padding {r['padding']}")
    for m in r["feature_maps"]:
        fm = m["feature_map"]
        print(f"  {m['kernel']:>16}: feature map {fm.shape[0]} x {fm.shape[1]}, values {fm.min():.2f} .. {fm.max():.2f}")
    print(f"figure: {r['figure']}")
    return 0
