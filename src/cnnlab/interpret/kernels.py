"""Hand-made filters ("kernels") by name, and a parser for filters typed on the command line.

    parse_kernel("sharpen")             # a built-in 3x3 filter
    parse_kernel("1,0,-1;2,0,-2;1,0,-1")  # rows split by ';', values by ','

The lecture's "Producing Feature Maps" slide shows sharpen, edge detect and "strong" edge
detect (the image-processing kernels of Wikipedia's "Kernel (image processing)" page); the
X filters are the lecture's "Filters to Detect X Features".
"""
from __future__ import annotations

import math

import numpy as np

from cnnlab.data.builtin.xo import XO_FILTERS
from cnnlab.errors import CnnlabError, unknown_name


def _fixed(rows, scale: float = 1.0) -> np.ndarray:
    kernel = np.array(rows, dtype=np.float64) * scale
    kernel.setflags(write=False)  # shared constants: copy before editing
    return kernel


KERNELS: dict[str, np.ndarray] = {
    "identity": _fixed([[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
    "sharpen": _fixed([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "edge": _fixed([[0, -1, 0], [-1, 4, -1], [0, -1, 0]]),  # "edge detect": 4-neighbour Laplacian
    "strong-edge": _fixed([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),  # 8-neighbour Laplacian
    "box-blur": _fixed(np.ones((3, 3)), 1 / 9),
    "gaussian-blur": _fixed([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 1 / 16),
    "sobel-x": _fixed([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),  # dark-to-bright left to right
    "sobel-y": _fixed([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),  # dark-to-bright top to bottom
    "emboss": _fixed([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
    **{f"x-{name.replace('_', '-')}": _fixed(f) for name, f in XO_FILTERS.items()},
}
"""Built-in (3, 3) float64 filters: x-diagonal-down, x-crossing, x-diagonal-up are the X filters."""

MATRIX_FORM = "rows separated by ';' and values by ',', e.g. \"0,-1,0;-1,5,-1;0,-1,0\""


def parse_kernel(text: str) -> np.ndarray:
    """A built-in kernel name or a matrix string -> a float64 (kh, kw) filter (a copy)."""
    if not isinstance(text, str) or not text.strip():
        raise CnnlabError(f"kernel {text!r}: expected a name ({', '.join(KERNELS)}) or a matrix, "
                          f"{MATRIX_FORM}")
    name = text.strip().lower().replace("_", "-")
    if name in KERNELS:
        return KERNELS[name].copy()
    if "," in text or ";" in text or _is_number(text):
        return parse_matrix(text, "kernel")
    error = unknown_name("kernel", name, KERNELS)
    raise CnnlabError(f"{error} (or a matrix, {MATRIX_FORM})")


def parse_matrix(text: str, what: str = "matrix") -> np.ndarray:
    """"a,b,c;d,e,f" -> a float64 (rows, cols) array; ``what`` names it in errors."""
    rows = [row.split(",") for row in text.strip().split(";")]
    try:
        values = [[float(v) for v in row] for row in rows]
    except ValueError:
        raise CnnlabError(f"{what} {text!r}: every value must be a number; expected "
                          f"{MATRIX_FORM}") from None
    if not all(math.isfinite(v) for row in values for v in row):
        raise CnnlabError(f"{what} {text!r}: values must be finite numbers; expected {MATRIX_FORM}")
    if len({len(row) for row in values}) != 1:
        lengths = ", ".join(str(len(row)) for row in values)
        raise CnnlabError(f"{what} {text!r}: rows have different lengths ({lengths}); expected a "
                          f"rectangular matrix, {MATRIX_FORM}")
    return np.array(values, dtype=np.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
