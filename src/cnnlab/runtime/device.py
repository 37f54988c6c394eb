"""Device choice and mixed precision: the same code on CPU and CUDA.

Torch loads when a function runs: the training config reads ``AMP_POLICIES`` (its ``amp``
choices) here, and ``cnnlab --help`` loads no torch.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from cnnlab.errors import CnnlabError

if TYPE_CHECKING:
    import torch

# the config's amp: auto, bf16 autocast, bf16 weights and activations (runtime/precision.py), fp16 + scaler, fp32
AMP_POLICIES = ("auto", "bf16", "bf16-full", "fp16", "off")


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` takes CUDA, then Apple's MPS, then the CPU; a named device must be present."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CnnlabError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CnnlabError(f"--device {name}: CUDA is not available on this machine (try --device auto or cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise CnnlabError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA devices")
    if device.type == "mps" and not _mps_available():
        raise CnnlabError(f"--device {name}: Apple's MPS is not available on this machine (try --device auto or cpu)")
    if device.type not in ("cpu", "cuda", "mps"):
        raise CnnlabError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps")
    return device


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def bf16_supported(device: torch.device) -> bool:
    """True where bf16 autocast is fast: CUDA with bf16, CPUs with AVX-512 bf16 or AMX."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                    or getattr(cpu, "_is_amx_tile_supported", lambda: False)())
    return False


MIN_CPU_BF16_SIDE = 16  # CPU: bf16 is 1.65x fp32 for lecture_cnn at 28x28, 1.02x at 8x8 (benchmarks/RESULTS.md)


def use_bf16(device: torch.device, policy: str, image_side: int) -> bool:
    """Whether training takes bf16 autocast under ``policy`` for square-ish inputs of ``image_side``."""
    if policy not in AMP_POLICIES:
        raise CnnlabError(f"amp {policy!r}: expected one of {', '.join(AMP_POLICIES)}")
    if policy in ("off", "fp16") or not bf16_supported(device):
        return False
    return policy.startswith("bf16") or device.type == "cuda" or image_side >= MIN_CPU_BF16_SIDE


def use_fp16(device: torch.device, policy: str) -> bool:
    """Whether training takes fp16 autocast with a gradient scaler: ``fp16`` asked on a GPU, or
    ``auto`` on a CUDA GPU without bf16 (before Ampere). On a CPU fp16 is refused: bf16 or off."""
    if policy == "fp16" and device.type == "cpu":
        raise CnnlabError("amp fp16: fp16 autocast is for GPUs; on a CPU use amp bf16 (or auto, or off)")
    if policy == "fp16":
        return True
    return policy == "auto" and device.type == "cuda" and not bf16_supported(device)


def autocast(device: torch.device, enabled: bool = True, fp16: bool = False):
    """bf16 autocast where supported (fp16 with ``fp16``), else a no-op context."""
    import torch

    if enabled and fp16:
        return torch.autocast(device.type, dtype=torch.float16)
    if enabled and bf16_supported(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
