"""Layer-by-layer summary: output volume, parameters, kernel, stride and receptive field.

    rows = summarize(get_model("vgg16"), (3, 224, 224))
    print(format_summary(rows))

The receptive field follows the standard recurrence through conv and pool layers,

    r_out = r_in + (k - 1) * j_in        (side of the input region one unit sees, in pixels)
    j_out = j_in * s                     (jump: input pixels between neighbouring units)

starting from r = j = 1 at the input. It is carried from tensor to tensor through every torch
operation, so branches (Inception) and shortcuts (ResNet) merge correctly: a sum or a concat
sees the largest field of its inputs. Values are along the height axis (all kernels here are
square); dilated kernels count as k_eff = d * (k - 1) + 1, and a transposed (upsampling)
conv divides the jump by its stride.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

_CONV = nn.modules.conv._ConvNd
_POOL = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)
_ADAPTIVE = (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
# Layers that get a row even when they hold sub-modules (e.g. a conv with its own padding module).
_LAYERS = (_CONV, *_POOL, *_ADAPTIVE, nn.Linear, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


@dataclass(frozen=True)
class LayerRow:
    """One layer call in a forward pass."""

    name: str  # module path, e.g. "features.block1.conv"
    type: str  # class name, e.g. "Conv2d"
    output: tuple[int, ...]  # output volume (h, w, d); (1, 1, n) for a vector
    params: int  # parameters of this layer itself
    kernel: int | None = None  # effective kernel size (conv and pool layers)
    stride: int | None = None
    receptive_field: float | None = None  # in input pixels; None once the map is flattened
    jump: float | None = None  # effective stride in input pixels (both are ints unless upsampled)


class _FieldTracker(TorchFunctionMode):
    """Carries (receptive field, jump) from the inputs of every torch op to its outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.field = WeakIdKeyDictionary()  # tensor -> (r, j)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        known = [self.field[t] for t in _tensors((args, kwargs)) if t in self.field]
        if known:
            merged = (max(r for r, _ in known), max(j for _, j in known))
            for t in _tensors(out):
                self.field[t] = merged
        return out


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    """The tensors inside nested tuples, lists and dicts."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _window(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> tuple[int, int] | tuple[None, None]:
    """Effective (kernel, stride) along the height axis of a windowed layer (conv, pool, or any
    module with ``kernel_size`` and ``stride``), else (None, None)."""
    def first(v):
        return v[0] if isinstance(v, (tuple, list)) else v

    if isinstance(module, _ADAPTIVE):
        if not x.dim() == out.dim() >= 3:
            return None, None
        h_in, h_out = x.shape[2], out.shape[2]  # windows of about h_in / h_out
        return math.ceil(h_in / h_out), max(h_in // h_out, 1)
    kernel, stride = getattr(module, "kernel_size", None), getattr(module, "stride", None)
    if kernel is None or stride is None:
        return None, None
    return first(getattr(module, "dilation", 1)) * (first(kernel) - 1) + 1, first(stride)


def _field(r: float, j: float, k: int, s: int, transposed: bool) -> tuple[float, float]:
    """The recurrence; a transposed conv (upsampling) sees ceil(k / s) input units and divides the jump."""
    if transposed:
        return r + (math.ceil(k / s) - 1) * j, j / s
    return r + (k - 1) * j, j * s


def _volume(t: torch.Tensor) -> tuple[int, ...]:
    if t.dim() == 4:
        return (t.shape[2], t.shape[3], t.shape[1])  # (B, C, H, W) -> (h, w, d)
    if t.dim() == 2:
        return (1, 1, t.shape[1])
    return tuple(t.shape[1:])


def summarize(model: nn.Module, input_shape: tuple[int, int, int] = (3, 224, 224)) -> list[LayerRow]:
    """Run one (1, *input_shape) zero image through ``model`` in eval mode and describe each layer call.

    The first row is the input itself. Modules called twice (a shared ReLU) give two rows.
    """
    param = next(model.parameters(), None)
    device, dtype = (param.device, param.dtype) if param is not None else ("cpu", torch.float32)
    c, h, w = input_shape
    rows = [LayerRow("input", "Input", (h, w, c), 0, receptive_field=1, jump=1)]
    tracker = _FieldTracker()

    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        x, out = next(_tensors(args), None), next(_tensors(output), None)
        if out is None:
            return
        r, j = tracker.field.get(x, (1, 1)) if x is not None else (1, 1)
        k, s = _window(module, x, out) if x is not None else (None, None)
        if k is not None:
            r, j = _field(r, j, k, s, getattr(module, "transposed", False))
        for t in _tensors(output):
            tracker.field[t] = (r, j)
        spatial = out.dim() == 4
        rows.append(LayerRow(names[module], type(module).__name__, _volume(out),
                             sum(p.numel() for p in module.parameters(recurse=False)), k, s,
                             r if spatial else None, j if spatial else None))

    names = {m: n or type(m).__name__ for n, m in model.named_modules()
             if not isinstance(m, nn.Identity) and (not any(m.children()) or isinstance(m, _LAYERS))}
    handles = [m.register_forward_hook(hook) for m in names]
    was_training = model.training
    try:
        model.eval()
        x = torch.zeros(1, c, h, w, device=device, dtype=dtype)
        tracker.field[x] = (1, 1)
        with torch.no_grad(), tracker:
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return rows


def format_summary(rows: list[LayerRow]) -> str:
    """A readable table of ``rows`` ("h x w x d" volumes), with the total parameter count."""
    def blank(v):
        return "-" if v is None else f"{v:g}"

    header = ("layer", "type", "output (h x w x d)", "params", "kernel", "stride", "RF", "jump")
    table = [header] + [(r.name, r.type, " x ".join(map(str, r.output)), f"{r.params:,}", blank(r.kernel),
                         blank(r.stride), blank(r.receptive_field), blank(r.jump)) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]

    def fmt(line):
        left = [cell.ljust(wd) for cell, wd in zip(line[:3], widths)]
        right = [cell.rjust(wd) for cell, wd in zip(line[3:], widths[3:])]
        return "  ".join(left + right).rstrip()

    rule = "-" * len(fmt(header))
    total = sum({r.name: r.params for r in rows}.values())  # a module called twice counts once
    return "\n".join([fmt(header), rule, *map(fmt, table[1:]), rule, f"total parameters: {total:,}"])
