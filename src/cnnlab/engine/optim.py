"""Optimizers and learning-rate schedules (per step).

Torch loads when a function runs: the training config reads its ``optimizer`` and ``schedule``
choices here, and ``cnnlab --help`` loads no torch.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cnnlab.errors import CnnlabError

if TYPE_CHECKING:
    import torch
    from torch import nn

DEFAULT_LR = {"sgd": 0.05, "adamw": 2e-3}  # the optimizers, with their peak learning rate for batch 128
OPTIMIZERS = tuple(DEFAULT_LR)
SCHEDULES = ("onecycle", "cosine", "constant")  # build_schedule's shapes of the learning rate over a run


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float,
                    momentum: float = 0.9) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum or AdamW; no weight decay on biases and norm weights."""
    import torch

    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if name not in DEFAULT_LR:
        raise CnnlabError(f"optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}")
    lr = lr or DEFAULT_LR[name]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=lr)


def build_schedule(optimizer: torch.optim.Optimizer, name: str, total_steps: int, warmup_steps: int,
                   cycle: tuple[float, float, float] = (0.0, 0.25, 0.0)) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step multiplier of the peak learning rate.

    onecycle: a triangle. ``cycle = (start, peak_at, end)``: from ``start`` x peak, linearly up to
    the peak at fraction ``peak_at`` of the steps (or at ``warmup_steps``, if later), then linearly
    down to ``end`` x peak (airbench94: (0.2, 0.23, 0.07)).
    cosine: linear warm-up over ``warmup_steps``, then half a cosine to 0.
    constant: 1 throughout.

    ``warmup_steps`` (the config's ``warmup_epochs``, 1 by default, or its ``warmup_steps``, if more) never takes more than half the
    run: a one-epoch run would otherwise climb for all of it and end at the peak learning rate,
    which leaves a model that is still changing fast (and whose BatchNorm statistics trail it).
    """
    import torch

    total = max(total_steps, 1)
    warmup_steps = min(warmup_steps, total // 2)  # leave at least half the run to come down
    if name == "onecycle":
        if len(cycle) != 3 or not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in cycle):
            raise CnnlabError(f"lr_cycle: expected [start, peak_at, end], three numbers in 0..1, got {cycle!r}")
        start, peak_at, end = cycle
        up = max(int(peak_at * total), warmup_steps, 1)

        def f(step: int) -> float:
            if step < up:
                return start + (1 - start) * step / up
            return end + (1 - end) * max(0.0, (total - step) / max(total - up, 1))
    elif name == "cosine":
        up = max(warmup_steps, 0)

        def f(step: int) -> float:
            if step < up:
                return (step + 1) / (up + 1)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - up) / max(total - up, 1))))
    elif name == "constant":
        def f(step: int) -> float:
            return 1.0
    else:
        raise CnnlabError(f"schedule {name!r}: expected one of {', '.join(SCHEDULES)}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, f)
