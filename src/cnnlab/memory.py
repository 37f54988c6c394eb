"""Memory bounds: what a size read from a file (or given as an option) would cost, checked
before anything of that size is allocated.

    need = footprint(lambda: task.build_model(cfg), (3, 4096, 4096))   # on the meta device
    require(need.training(batch=256), "training lecture_cnn on 3x4096x4096 images, batch 256",
            "use --image-size <= 512")
    # CnnlabError: training ... would need 51.5 GB; this machine has 23.0 GB available; use ...

The figures are estimates in fp32: parameters counted on ``torch.device("meta")`` (nothing is
allocated), activations from one forward pass on the meta device (every layer's output), and
the room from ``/proc/meminfo``'s MemAvailable (or ``os.sysconf``), capped by a cgroup limit, or
a CUDA device's free memory.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cnnlab.errors import CnnlabError

MAX_CLASSES = 100_000  # class counts read from files: a (K,) head, K names, a K-row report
FLOAT = 4              # bytes per fp32 value


# ---------------------------------------------------------------------------------------------
# the room there is
# ---------------------------------------------------------------------------------------------

def available(device=None) -> int:
    """Bytes this process may still allocate: on a CUDA device its free memory; else the
    system's MemAvailable, capped by the cgroup's limit when one is set."""
    if device is not None and getattr(device, "type", device) == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    room = _mem_available()
    limit = _cgroup_room()
    return min(room, limit) if limit is not None else room


def _mem_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # macOS, BSDs: free pages (an underestimate: caches count as used)
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return 1 << 62  # unknown: bound nothing rather than refuse everything


def _cgroup_room() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), None without a limit."""
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((base / "memory.current").read_text()))
    except (OSError, ValueError):
        return None


def gb(n: float) -> str:
    """Bytes as people say them: ``51.5 GB``, ``640 MB``."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def require(needed: int, what: str, advice: str = "", device=None) -> None:
    """Raise a CnnlabError with the figures when ``needed`` bytes exceed what is available."""
    have = available(device)
    if needed > have:
        where = "this GPU has" if device is not None and getattr(device, "type", device) == "cuda" \
            else "this machine has"
        raise CnnlabError(f"{what} would need {gb(needed)}; {where} {gb(have)} available"
                          + (f"; {advice}" if advice else ""))


def check_classes(count: int, source: str) -> None:
    """A class count read from ``source`` above ``MAX_CLASSES`` is refused."""
    if count > MAX_CLASSES:
        raise CnnlabError(f"{source}: {count:,} classes; cnnlab accepts at most {MAX_CLASSES:,}")


def largest_side(side: int, variable: int, fixed: int, room: int, multiple: int = 8) -> int:
    """The largest square side (a multiple of ``multiple``) at which ``fixed`` + ``variable`` bytes,
    with ``variable`` growing as side**2, fit ``room``; 0 when none does."""
    if room <= fixed or variable <= 0:
        return 0
    return int(side * math.sqrt((room - fixed) / variable)) // multiple * multiple


# ---------------------------------------------------------------------------------------------
# what a model costs
# ---------------------------------------------------------------------------------------------

@dataclass
class Footprint:
    """A model's memory at one input shape, per image where it grows with the batch."""

    parameters: int          # count (trainable or not), buffers left out
    weight_bytes: int        # parameters and buffers as built
    trainable_bytes: int     # the parameters a training step updates
    input_bytes: int         # one image: uint8 as read + fp32 as fed
    activation_bytes: int    # one image: every layer's output (what backward keeps)
    peak_bytes: int          # one image: the largest layer input + output (what inference holds)

    def training(self, batch: int, optimizer_states: int = 2) -> int:
        """Weights, gradients and ``optimizer_states`` moments, and a batch's activations."""
        return (self.weight_bytes + self.trainable_bytes * (1 + optimizer_states)
                + batch * (self.input_bytes + self.activation_bytes))

    def inference(self, batch: int = 1) -> int:
        return self.weight_bytes + batch * (self.input_bytes + self.peak_bytes)


def footprint(build: Callable, input_shape: tuple[int, int, int], what: str = "model") -> Footprint:
    """Build the model on the meta device (no memory), count it, and pass one (1, C, H, W) image
    through it there, summing each layer's output. A builder that refuses its arguments (a width
    of 0, a negative size) is a CnnlabError naming ``what``."""
    import torch

    c, h, w = input_shape
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Initializing zero-element tensors is a no-op"
            model = build()
    except CnnlabError:
        raise
    except (RuntimeError, ValueError, TypeError, ZeroDivisionError, OverflowError) as e:
        raise CnnlabError(f"{what}: cannot be built with these arguments ({type(e).__name__}: "
                          f"{(str(e).splitlines() or [''])[0][:200]})") from None
    params = list(model.parameters())
    empty = next((name for name, p in model.named_parameters() if p.numel() == 0), None)
    if empty is not None:
        raise CnnlabError(f"{what}: builds layer {empty} with no weights (a width or size of 0); "
                          f"widths and sizes must be at least 1")
    n = sum(p.numel() for p in params)
    weights = sum(t.numel() * t.element_size() for t in (*params, *model.buffers()))
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    total, peak = _activations(model, (1, c, h, w))
    return Footprint(n, weights, trainable, c * h * w * (1 + FLOAT), total, peak)


def _activations(model, shape: tuple[int, ...]) -> tuple[int, int]:
    """(sum, peak) bytes of the leaf layers' outputs for one meta input of ``shape``. A forward
    pass that stops on the meta device (an op without a meta kernel, such as NMS, or a model
    that takes more than images) gives what its layers reached: a lower bound."""
    import torch

    total, peak = 0, 0

    def hook(module, inputs, output):
        nonlocal total, peak
        outs = [t for t in (output if isinstance(output, (tuple, list)) else [output])
                if isinstance(t, torch.Tensor)]
        ins = [t for t in inputs if isinstance(t, torch.Tensor)]
        size = sum(t.numel() * t.element_size() for t in outs if not any(t is i for i in ins))  # in place: 0
        total += size
        peak = max(peak, size + sum(t.numel() * t.element_size() for t in ins))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.empty(shape, device="meta"))
    except Exception:  # noqa: BLE001 -- the layers reached so far still count (see above)
        pass
    finally:
        model.train(training)
        for handle in handles:
            handle.remove()
    return total, peak
