"""Hand-made filters on a real image, and the lecture's convolution walk-through as text.

    result = convolve_image("photo.jpg", ["sharpen", "edge", "strong-edge"])
    plot_feature_maps(result, "feature_maps.png")   # the "Producing Feature Maps" slide
    print(explain_convolution())                    # the 5x5 image / 3x3 filter slides
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cnnlab.errors import CnnlabError  # noqa: E402
from cnnlab.interpret.conv_numpy import conv2d_im2col, output_size  # noqa: E402
from cnnlab.interpret.kernels import parse_kernel, parse_matrix  # noqa: E402
from PIL.Image import Image as PILImage  # noqa: E402

from cnnlab.images import as_image, peek_image, read_image  # noqa: E402
from cnnlab.memory import require  # noqa: E402
from cnnlab.figures import map_style, save_figure  # noqa: E402

# The lecture's "Convolution Operation" slides: a 5x5 binary image and a 3x3 filter
# (the numbers are drawn on the slides; feature map [[4, 3, 4], [2, 4, 3], [2, 3, 4]]).
LECTURE_IMAGE = np.array([[1, 1, 1, 0, 0],
                          [0, 1, 1, 1, 0],
                          [0, 0, 1, 1, 1],
                          [0, 0, 1, 1, 0],
                          [0, 1, 1, 0, 0]], dtype=np.float64)
LECTURE_FILTER = np.array([[1, 0, 1],
                           [0, 1, 0],
                           [1, 0, 1]], dtype=np.float64)
MAX_EXPLAINED_POSITIONS = 100  # the walk-through writes every output position out
BAND_BYTES = 32 << 20          # im2col patches of one band of output rows: large images go band by band
FLOAT32_PIXELS = 16_000_000    # from here on feature maps are float32 (a 64-megapixel image fits in 1 GB)
SHOWN_SIDE = 1024              # the figure draws at most this many pixels a side (its panels are ~420)
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601, as read_image(channels=1)

# ---------------------------------------------------------------------------------------
# Feature maps of an image
# ---------------------------------------------------------------------------------------


def convolve_image(image, kernels: list, stride: int = 1, padding: int | None = None) -> dict:
    """Convolve a grayscale image with each kernel (a name, "a,b,c;d,e,f;..." or a 2-D array).

    image: a file path, or an array (H, W) or (C, H, W); uint8 is scaled to [0, 1].
    padding: zeros on each side, or None for "same": the feature map keeps the image
    size at stride 1 (ceil(size / stride) otherwise; an even kernel pads one more at the end).
    Returns ``{"input": (H, W) float, "stride", "padding", "feature_maps": [{"kernel",
    "weights", "feature_map", "size"}]}``.
    """
    if not isinstance(kernels, (list, tuple)) or not kernels:
        raise CnnlabError("kernels: give a list of at least one kernel (a name or a matrix)")
    gray = _gray(image)
    maps = []
    for text in kernels:
        weights = parse_kernel(text) if isinstance(text, str) else _small_matrix(text, "kernel")
        kh, kw = weights.shape
        if padding is None:  # "same": (k - 1) // 2 zeros before, k // 2 after
            pads = ((kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2)
        else:
            pads = (padding,) * 4 if isinstance(padding, int) and padding >= 0 else padding
        feature_map = _convolve(gray, weights.astype(gray.dtype), stride, pads)  # (H', W')
        maps.append({"kernel": text if isinstance(text, str) else "custom", "weights": weights,
                     "feature_map": feature_map, "size": feature_map.shape})
    return {"input": gray, "stride": stride, "padding": "same" if padding is None else padding,
            "feature_maps": maps}


def plot_feature_maps(result: dict, path: str | Path) -> Path:
    """One figure: the input beside each feature map, each with a colour bar (a large image is
    drawn from every n-th pixel, at most ``SHOWN_SIDE`` a side: the panels are smaller still)."""
    panels = [("input", _shown(result["input"]), f"input {_hw(result['input'].shape)}")]
    for m in result["feature_maps"]:
        kh, kw = m["weights"].shape
        panels.append((m["kernel"], _shown(m["feature_map"]),
                       f"{m['kernel']} ({kh}x{kw})\nfeature map {_hw(m['size'])}, "
                       f"stride {result['stride']}, padding {result['padding']}"))
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.8 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for i, (ax, (_, values, title)) in enumerate(zip(axes.flat, panels)):
        # Feature maps span the 1st-99th percentile, so a few extremes don't wash out edges; a signed map
        # (an edge filter's) is drawn red for positive and blue for negative, white at 0.
        shown = ax.imshow(values, **map_style(values, "gray", clip=0 if i == 0 else 1))
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, extend="neither" if i == 0 else "both")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path = save_figure(fig, path, dpi=100)
    return path


def _shown(values: np.ndarray) -> np.ndarray:
    step = -(-max(values.shape) // SHOWN_SIDE)
    return values[::step, ::step] if step > 1 else values


def _convolve(gray: np.ndarray, weights: np.ndarray, stride, pads) -> np.ndarray:
    """``conv2d_im2col`` of an (H, W) image, band by band of output rows when its patches would
    take more than ``BAND_BYTES``, each band zero-padded on its own (no padded copy of the image)."""
    h, w = gray.shape
    kh, kw = weights.shape
    if not (isinstance(stride, int) and stride >= 1 and isinstance(pads, tuple)) \
            or h * w * kh * kw * gray.itemsize <= BAND_BYTES:  # small, or options conv2d_im2col explains
        top, bottom, left, right = pads if isinstance(pads, tuple) else (0, 0, 0, 0)
        x = np.pad(gray, ((top, bottom), (left, right)))[None, None] if isinstance(pads, tuple) else gray[None, None]
        return conv2d_im2col(x, weights[None, None], stride=stride, padding=0 if isinstance(pads, tuple) else pads)[0, 0]
    top, bottom, left, right = pads
    out_h, out_w = (h + top + bottom - kh) // stride + 1, (w + left + right - kw) // stride + 1
    if out_h < 1 or out_w < 1:
        raise CnnlabError(f"kernel {kh}x{kw} is larger than the padded input {h + top + bottom}x{w + left + right}")
    out = np.empty((out_h, out_w), gray.dtype)
    rows = max(1, BAND_BYTES // (out_w * kh * kw * gray.itemsize))
    for r0 in range(0, out_h, rows):
        r1 = min(out_h, r0 + rows)
        first, last = r0 * stride - top, (r1 - 1) * stride - top + kh  # input rows [first, last) of the band
        band = np.zeros((last - first, w + left + right), gray.dtype)
        band[max(first, 0) - first:min(last, h) - first, left:left + w] = gray[max(first, 0):min(last, h)]
        out[r0:r1] = conv2d_im2col(band[None, None], weights[None, None], stride=stride)[0, 0]
    return out


def _gray(image) -> np.ndarray:
    """A path or an array -> (H, W) float64, float32 from ``FLOAT32_PIXELS`` on; its memory, and
    that of one feature map, checked first."""
    if isinstance(image, (str, Path)):
        h, w = peek_image(image)[1:]
        _check_memory(h, w)
        a = read_image(image, channels=1)[0].numpy()
        return a.astype(_dtype(a.shape)) / 255
    if isinstance(image, PILImage):  # any mode, as a file of it would read
        image = as_image(image, channels=1, name="image")[0].numpy()
    if isinstance(image, (bytes, bytearray)) or not hasattr(image, "__array__") and not isinstance(image, (list, tuple)):
        raise CnnlabError(f"image: expected a path or an array (H, W) or (C, H, W), got {type(image).__name__}")
    a = np.asarray(image)
    if a.dtype.kind not in "uifb":
        raise CnnlabError(f"image: expected an array of numbers, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[0] in (1, 3, 4):
        a = a[0] if a.shape[0] == 1 else np.tensordot(LUMA, a[:3].astype(_dtype(a.shape[1:])), axes=1)
    if a.ndim != 2 or min(a.shape) < 1:
        raise CnnlabError(f"image: expected a path or an array (H, W) or (C, H, W), got shape {a.shape}")
    _check_memory(*a.shape)
    return a.astype(_dtype(a.shape)) / 255 if a.dtype == np.uint8 else a.astype(_dtype(a.shape))


def _dtype(shape) -> type:
    return np.float32 if shape[0] * shape[1] >= FLOAT32_PIXELS else np.float64


def _check_memory(h: int, w: int) -> None:
    """The input and one feature map as floats, and one band of patches, must fit."""
    size = np.dtype(_dtype((h, w))).itemsize
    require(2 * h * w * size + BAND_BYTES, f"image: convolving {h}x{w} pixels",
            "crop or shrink the image first (cnnlab pixels --crop shows a region)")


def _hw(shape) -> str:
    return f"{shape[0]}x{shape[1]}"


# ---------------------------------------------------------------------------------------
# The walk-through: patch, products, sum, at every output position
# ---------------------------------------------------------------------------------------


def explain_convolution(image=None, kernel=None, stride: int = 1, padding: int = 0) -> str:
    """The lecture's step-by-step convolution as text (default: its 5x5 image and 3x3 filter).

    image: an (H, W) array or a matrix string "a,b;c,d"; kernel: a kernel name, a matrix
    string or an array. At each output position: the patch, the element-wise products and
    their sum; then the output size (W - F + 2P)/S + 1 and the whole feature map.
    """
    x = LECTURE_IMAGE if image is None else _small_matrix(image, "image")
    w = LECTURE_FILTER if kernel is None else (
        parse_kernel(kernel) if isinstance(kernel, str) else _small_matrix(kernel, "kernel"))
    (h, wd), (kh, kw) = x.shape, w.shape
    sizes = [output_size(n, k, padding, stride, exact=False) for n, k in ((h, kh), (wd, kw))]
    out_h, out_w = sizes
    if out_h * out_w > MAX_EXPLAINED_POSITIONS:
        raise CnnlabError(f"image: {h}x{wd} with a {kh}x{kw} kernel gives {out_h * out_w} output "
                          f"positions; the walk-through writes at most {MAX_EXPLAINED_POSITIONS}: "
                          f"use a smaller image or a larger stride")
    xp = np.pad(x, padding)
    lines = [f"Convolution of a {_hw(x.shape)} image with a {kh}x{kw} filter "
             f"(stride {stride}, padding {padding})", "", f"image ({_hw(x.shape)}):", *_rows(x), "",
             f"filter ({kh}x{kw}):", *_rows(w), ""]
    if padding:
        lines += [f"image with {padding} pixel(s) of zero padding ({_hw(xp.shape)}):", *_rows(xp), ""]
    lines += ["We slide the filter over the image, element-wise multiply, and add the outputs.", ""]

    feature_map = np.full((out_h, out_w), np.nan)
    for p in range(out_h):
        for q in range(out_w):
            top, left = p * stride, q * stride
            patch = xp[top:top + kh, left:left + kw]
            products = patch * w
            feature_map[p, q] = products.sum()
            terms = " + ".join(_num(v) if v >= 0 else f"({_num(v)})" for v in products.flat)
            lines += [f"feature_map[{p}, {q}]: receptive field rows {top}-{top + kh - 1}, "
                      f"columns {left}-{left + kw - 1} of the {'padded ' if padding else ''}image",
                      *_side_by_side([("patch", patch), ("x filter", w), ("= products", products)]),
                      f"  sum = {terms} = {_num(feature_map[p, q])}  -> feature_map[{p}, {q}]",
                      "  feature map so far:", *_rows(feature_map), ""]

    lines += ["Output volume: (W - F + 2P)/S + 1"]
    for label, n, k, size in (("height", h, kh, out_h), ("width", wd, kw, out_w)):
        exact = (n - k + 2 * padding) / stride + 1
        note = "" if exact == size else (f" (not an integer: the stride leaves {n - k + 2 * padding} "
                                         f"% {stride} pixels over; frameworks drop them: {size})")
        lines.append(f"  {label + ':':7} ({n} - {k} + 2*{padding})/{stride} + 1 = {_num(exact)}{note}")
    lines += ["", f"feature map ({_hw(feature_map.shape)}):", *_rows(feature_map)]
    return "\n".join(lines)


def _small_matrix(value, what: str) -> np.ndarray:
    a = parse_matrix(value, what) if isinstance(value, str) else np.asarray(value, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 1:
        raise CnnlabError(f"{what}: expected a 2-D matrix, got shape {a.shape}")
    return a


def _num(v: float) -> str:
    """1.0 -> "1", 0.25 -> "0.25", nan (not computed yet) -> "."."""
    if np.isnan(v):
        return "."
    return str(int(v)) if float(v).is_integer() else f"{v:.4g}"


def _cells(m: np.ndarray) -> list[list[str]]:
    return [[_num(v) for v in row] for row in m]


def _rows(m: np.ndarray, indent: str = "  ") -> list[str]:
    cells = _cells(m)
    width = max(len(c) for row in cells for c in row)
    return [indent + " ".join(c.rjust(width) for c in row) for row in cells]


def _side_by_side(blocks: list[tuple[str, np.ndarray]]) -> list[str]:
    """Titled matrices next to each other, one text line per matrix row."""
    columns = []
    for title, m in blocks:
        rows = _rows(m, indent="")
        width = max(len(title), *(len(r) for r in rows))
        columns.append([title.ljust(width)] + [r.ljust(width) for r in rows])
    return ["  " + "   ".join(parts).rstrip() for parts in zip(*columns)]
