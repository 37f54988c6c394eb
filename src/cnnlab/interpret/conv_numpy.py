"""Convolution from scratch in NumPy, as deep-learning frameworks define it.

    y = conv2d_direct(x, weight, bias, stride=1, padding=1)   # (N, C, H, W) x (F, C, kh, kw)
    y = conv2d_im2col(x, weight, bias, stride=1, padding=1)   # the same numbers, one matmul
    relu(y); max_pool2d(y, 2); avg_pool2d(y, 2)

"Convolution" in a CNN is cross-correlation: the filter slides over the input unflipped,
and each output value is the weighted sum of one patch (its receptive field) plus a bias:

    feature_map[n, f, p, q] = sum_{c,i,j} weight[f, c, i, j] * x[n, c, p*S + i, q*S + j] + bias[f]

Arguments follow ``torch.nn.functional`` (``stride``, ``padding`` as an int or an (h, w) pair;
pooling ``stride`` defaults to the kernel size), and the tests check every function against it.
"""
from __future__ import annotations

import math

import numpy as np

from cnnlab.errors import CnnlabError

# ---------------------------------------------------------------------------------------
# The output volume: (W - F + 2P) / S + 1
# ---------------------------------------------------------------------------------------


def output_size(W: int, F: int, P: int = 0, S: int = 1, exact: bool = True) -> int:
    """Output width of a filter of width ``F`` sliding with stride ``S`` over ``W`` padded by ``P``.

    With ``exact`` (the lecture's formula) a stride that does not fit the input evenly is an
    error; without it the leftover rows are dropped, as frameworks do (floor).

    >>> output_size(5, 3, 0, 1)
    3
    """
    for name, value, low in (("W (input size)", W, 1), ("F (filter size)", F, 1),
                             ("P (padding)", P, 0), ("S (stride)", S, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise CnnlabError(f"output size: {name} must be an integer >= {low}, got {value!r}")
    span = W - F + 2 * P
    if span < 0:
        raise CnnlabError(f"output size: filter F={F} is larger than the padded input "
                          f"W + 2P = {W + 2 * P}; (W - F + 2P)/S + 1 = ({W} - {F} + 2*{P})/{S} + 1 < 1")
    if exact and span % S:
        raise CnnlabError(f"output size: (W - F + 2P)/S + 1 = ({W} - {F} + 2*{P})/{S} + 1 = "
                          f"{span / S + 1:g} is not an integer: stride S={S} does not fit; "
                          f"change the padding or the stride")
    return span // S + 1


# ---------------------------------------------------------------------------------------
# Convolution, two ways
# ---------------------------------------------------------------------------------------


def conv2d_direct(x, weight, bias=None, stride=1, padding=0) -> np.ndarray:
    """Slide each filter over the input: one weighted sum of a patch per output position.

    x (N, C, H, W), weight (F, C, kh, kw), bias (F,) -> feature maps (N, F, H', W').
    """
    x, weight, bias, (sh, sw), (ph, pw) = _check_conv(x, weight, bias, stride, padding)
    xp = _pad(x, ph, pw)
    _, _, kh, kw = weight.shape
    out_h, out_w = _out_hw(xp.shape[2:], (kh, kw), (sh, sw), padding)
    out = np.empty((x.shape[0], weight.shape[0], out_h, out_w), dtype=x.dtype)
    for p in range(out_h):
        for q in range(out_w):
            receptive_field = xp[:, :, p * sh:p * sh + kh, q * sw:q * sw + kw]  # (N, C, kh, kw)
            out[:, :, p, q] = np.tensordot(receptive_field, weight, axes=([1, 2, 3], [1, 2, 3]))  # (N, F)
    return out + bias[:, None, None]


def conv2d_im2col(x, weight, bias=None, stride=1, padding=0) -> np.ndarray:
    """Unfold every receptive field into a column, then one matrix product does all filters.

    x (N, C, H, W), weight (F, C, kh, kw), bias (F,) -> feature maps (N, F, H', W').
    """
    x, weight, bias, (sh, sw), (ph, pw) = _check_conv(x, weight, bias, stride, padding)
    xp = _pad(x, ph, pw)
    f, c, kh, kw = weight.shape
    out_h, out_w = _out_hw(xp.shape[2:], (kh, kw), (sh, sw), padding)
    cols = im2col(xp, (kh, kw), (sh, sw), (out_h, out_w))  # (N, C*kh*kw, H'*W')
    out = weight.reshape(f, c * kh * kw) @ cols  # (N, F, H'*W')
    return out.reshape(x.shape[0], f, out_h, out_w) + bias[:, None, None]


def im2col(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
           out_hw: tuple[int, int]) -> np.ndarray:
    """Padded (N, C, H, W) -> (N, C*kh*kw, H'*W'): column p*W' + q is receptive field (p, q)."""
    return _patches(xp, kernel, stride, out_hw).reshape(xp.shape[0], -1, out_hw[0] * out_hw[1])


# ---------------------------------------------------------------------------------------
# Non-linearity and pooling
# ---------------------------------------------------------------------------------------


def relu(x) -> np.ndarray:
    """g(z) = max(0, z), pixel by pixel."""
    return np.maximum(np.asarray(x), 0)


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> np.ndarray:
    """The largest value of each window: (N, C, H, W) -> (N, C, H', W'); padding is -inf."""
    return _pool(x, kernel_size, stride, padding, ceil_mode, "max")


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> np.ndarray:
    """The mean of each window: (N, C, H, W) -> (N, C, H', W'); zero padding counts, as in torch."""
    return _pool(x, kernel_size, stride, padding, ceil_mode, "avg")


def _pool(x, kernel_size, stride, padding, ceil_mode: bool, kind: str) -> np.ndarray:
    x = _as_float(x, "x", ndim=4)
    kh, kw = _pair(kernel_size, "kernel_size", low=1)
    sh, sw = (kh, kw) if stride is None else _pair(stride, "stride", low=1)
    ph, pw = _pair(padding, "padding", low=0)
    if 2 * ph > kh or 2 * pw > kw:
        raise CnnlabError(f"padding {padding!r}: pooling padding must be at most half the kernel "
                          f"size {kh}x{kw}")
    h, w = x.shape[2:]
    out_h, out_w = _pool_len(h, kh, sh, ph, ceil_mode), _pool_len(w, kw, sw, pw, ceil_mode)
    # Windows that ceil_mode lets hang over the bottom/right edge see extra padding.
    extra_h = max(0, (out_h - 1) * sh + kh - (h + 2 * ph))
    extra_w = max(0, (out_w - 1) * sw + kw - (w + 2 * pw))
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + extra_h), (pw, pw + extra_w)), constant_values=fill)
    windows = _patches(xp, (kh, kw), (sh, sw), (out_h, out_w))  # (N, C, kh, kw, H', W')
    if kind == "max":
        return windows.max(axis=(2, 3))
    # torch divides by the window clipped to the padded input (ceil_mode overhang excluded).
    rows = np.minimum(np.arange(out_h) * sh + kh, h + 2 * ph) - np.arange(out_h) * sh  # (H',)
    cols = np.minimum(np.arange(out_w) * sw + kw, w + 2 * pw) - np.arange(out_w) * sw  # (W',)
    return windows.sum(axis=(2, 3)) / (rows[:, None] * cols[None, :]).astype(x.dtype)


def _pool_len(size: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    span = size + 2 * p - k
    if span < 0:
        raise CnnlabError(f"kernel_size {k} is larger than the padded input {size + 2 * p}")
    n = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (n - 1) * s >= size + p:  # the last window must start inside the input
        n -= 1
    return n


# ---------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------


def _patches(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
             out_hw: tuple[int, int]) -> np.ndarray:
    """Every window of a padded (N, C, H, W) array: (N, C, kh, kw, H', W').

    One strided slice per kernel offset (i, j) collects that weight's input for all positions.
    """
    (kh, kw), (sh, sw), (out_h, out_w) = kernel, stride, out_hw
    n, c = xp.shape[:2]
    out = np.empty((n, c, kh, kw, out_h, out_w), dtype=xp.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i, j] = xp[:, :, i:i + sh * out_h:sh, j:j + sw * out_w:sw]  # (N, C, H', W')
    return out


def _check_conv(x, weight, bias, stride, padding):
    x = _as_float(x, "x", ndim=4)
    weight = _as_float(weight, "weight", ndim=4)
    dtype = np.result_type(x, weight)
    x, weight = x.astype(dtype, copy=False), weight.astype(dtype, copy=False)
    if weight.shape[1] != x.shape[1]:
        raise CnnlabError(f"weight has {weight.shape[1]} input channels per filter, but x has "
                          f"{x.shape[1]} channels: expected weight of shape (F, {x.shape[1]}, kh, kw)")
    if bias is None:
        bias = np.zeros(weight.shape[0], dtype=dtype)
    bias = _as_float(bias, "bias", ndim=1).astype(dtype, copy=False)
    if bias.shape != (weight.shape[0],):
        raise CnnlabError(f"bias has shape {bias.shape}, expected ({weight.shape[0]},): one per filter")
    return x, weight, bias, _pair(stride, "stride", low=1), _pair(padding, "padding", low=0)


def _out_hw(padded_hw, kernel, stride, padding) -> tuple[int, int]:
    (h, w), (kh, kw) = padded_hw, kernel
    if kh > h or kw > w:
        raise CnnlabError(f"weight: kernel {kh}x{kw} is larger than the padded input {h}x{w} "
                          f"(padding={padding!r})")
    return (h - kh) // stride[0] + 1, (w - kw) // stride[1] + 1


def _pad(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x


def _pair(value, name: str, low: int) -> tuple[int, int]:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                 and v >= low for v in pair):
        raise CnnlabError(f"{name} must be an integer >= {low} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _as_float(a, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != ndim:
        raise CnnlabError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    return a
