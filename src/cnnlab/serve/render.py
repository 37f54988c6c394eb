"""Results into JSON for the browser: images as PNG data URLs, arrays as lists, paths as names.

    png_data_url(uint8_chw)                      # "data:image/png;base64,..."
    jsonable(result, files={"/tmp/x/mask.png": "mask.png"})   # files written by a task, inlined
"""
from __future__ import annotations

import base64
import io
import math
import mimetypes
import re
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from torch import Tensor

from cnnlab.images import resize, to_pil

MAX_SIDE = 512  # overlays and maps sent to the browser are at most this many pixels on a side


def png_data_url(img: Tensor) -> str:
    """uint8 (1|3|4, H, W) -> a PNG data URL."""
    buf = io.BytesIO()
    to_pil(img).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def file_data_url(path: Path) -> str:
    """A file written while answering a request -> a data URL of its bytes."""
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def fit(img: Tensor, max_side: int = MAX_SIDE) -> Tensor:
    """uint8 (C, H, W) scaled down so that its longer side is at most ``max_side``."""
    h, w = img.shape[-2:]
    scale = max_side / max(h, w)
    return img if scale >= 1 else resize(img, (max(1, round(h * scale)), max(1, round(w * scale))))


def fit_map(values: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """A float (H, W) map in [0, 1] scaled down like ``fit``."""
    img = torch.from_numpy(np.asarray(values, dtype=np.float32))[None].mul(255).round().byte()
    return fit(img, max_side)[0].float().div(255).numpy()


def gray_png(values: np.ndarray, low: float | None = None, high: float | None = None) -> str:
    """A float (H, W) map as a grey PNG, ``low``..``high`` -> 0..255 (default: its 1st-99th percentile)."""
    v = np.asarray(values, dtype=np.float64)
    if low is None or high is None:
        low, high = np.percentile(v, [1, 99]) if v.size else (0.0, 1.0)
    scale = 255.0 / (high - low) if high > low else 0.0
    out = np.clip((v - low) * scale, 0, 255).round().astype(np.uint8)
    return png_data_url(torch.from_numpy(out)[None])


def colour_png(values: np.ndarray, cmap: str = "viridis") -> str:
    """A float (H, W) map in [0, 1] through a matplotlib colour map, as an RGB PNG."""
    rgb = colormaps[cmap](np.clip(values, 0, 1))[..., :3]  # (H, W, 3)
    return png_data_url(torch.from_numpy((rgb * 255).round().astype(np.uint8)).permute(2, 0, 1))


def channel_grid(fmap: Tensor, max_channels: int = 16, cols: int = 8, cell: int = 64) -> tuple[str, list[int]]:
    """A layer's most active channels (float (C, h, w)) as one viridis grid PNG, each cell scaled to
    its own range; returns the data URL and the channel indices shown, in grid order."""
    n = min(max_channels, fmap.shape[0])
    order = fmap.mean((1, 2)).topk(n).indices.tolist()  # most active channels first
    rows = math.ceil(n / cols)
    h, w = fmap.shape[-2:]
    side = max(h, w)
    ch, cw = max(1, round(cell * h / side)), max(1, round(cell * w / side))
    grid = np.zeros((rows * (ch + 2), min(n, cols) * (cw + 2)), dtype=np.float32)
    for i, c in enumerate(order):
        m = fmap[c][None, None].float()
        m = torch.nn.functional.interpolate(m, size=(ch, cw), mode="nearest")[0, 0].numpy()
        lo, hi = float(m.min()), float(m.max())
        r, q = divmod(i, cols)
        grid[r * (ch + 2) + 1:r * (ch + 2) + 1 + ch, q * (cw + 2) + 1:q * (cw + 2) + 1 + cw] = \
            (m - lo) / (hi - lo) if hi > lo else 0.0
    return colour_png(grid), order


def jsonable(value, names: dict[str, str] | None = None, folder: Path | None = None):
    """Tensors and arrays -> lists, non-finite floats -> None, strings in ``names`` (a server path
    -> its public name) -> that name, and paths of files that a task wrote into the request's own
    ``folder`` -> the file inlined as a data URL (so no server path leaves the service)."""
    names = names or {}
    if isinstance(value, dict):
        return {str(k): jsonable(v, names, folder) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, names, folder) for v in value]
    if isinstance(value, Tensor):
        return jsonable(value.detach().cpu().tolist(), names, folder)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), names, folder)
    if isinstance(value, np.generic):
        return jsonable(value.item(), names, folder)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        if value in names:
            return names[value]
        if folder is not None and value.startswith(str(folder)):
            path = Path(value)
            return file_data_url(path) if path.is_file() else path.name
    return value


def readable(name: str) -> str:
    """A module path as a reader names it: ``net._blocks.3._depthwise_conv`` -> ``block 3 / depthwise conv``,
    ``features.block1.conv`` -> ``block 1 / conv``; wrappers (net, model, features, ...) go."""
    parts = [p.strip("_").replace("_", " ") for p in name.split(".")]
    words: list[str] = []
    for p in parts:
        if p.isdigit() and words and words[-1][-1].isdigit():  # layer1.0 -> layer 1 / block 0
            words.append(f"block {p}")
        elif p.isdigit() and words:
            prev = words.pop()
            words.append(f"{prev[:-1] if prev.endswith('s') and prev != 'features' else prev} {p}")
        else:
            words.append(re.sub(r"^([a-z]+?)(\d+)$", r"\1 \2", p))
    while len(words) > 1 and words[0] in _WRAPPERS:
        words.pop(0)
    return " / ".join(words) or name


_WRAPPERS = {"net", "model", "module", "orig mod", "features", "backbone", "body", "encoder"}


def denormalised_png(x: Tensor, mean: list[float], std: list[float]) -> str:
    """The normalised model input (float (C, h, w)) mapped back to 0..255 for display: x * std + mean."""
    c = x.shape[0]
    m = torch.tensor(mean[:c] or [0.0] * c).view(-1, 1, 1)
    s = torch.tensor(std[:c] or [1.0] * c).view(-1, 1, 1)
    return png_data_url((x * s + m).clamp(0, 1).mul(255).round().to(torch.uint8))
