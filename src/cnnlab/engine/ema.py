"""An exponential moving average of the weights (Polyak averaging, as timm's ``ModelEmaV2`` and
Ultralytics keep one): validation, ``best.pt`` and everything after it use the average, which is
steadier than the last step's weights when the loss is noisy (small batches, strong augmentation).

    ema = WeightEma(model, decay=0.995)
    ... optimizer.step(); ema.update()
    task.evaluate(ema.model, ...)

After update ``n`` the average moves towards the weights by ``1 - min(decay, (1 + n) / (10 + n))``:
a short memory at first, so the average does not hold on to the initial weights. Floating-point
parameters and buffers (BatchNorm's running statistics too) are averaged, integer buffers copied.
Modules without trainable parameters (a frozen encoder) are shared with the model, not copied: they
never change, and a feature cache that follows the encoder (tasks/caption.py) keeps its features.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class WeightEma:
    def __init__(self, model: nn.Module, decay: float):
        frozen = {id(m): m for m in model.modules()
                  if any(True for _ in m.parameters()) and not any(p.requires_grad for p in m.parameters())}
        self.model = copy.deepcopy(model, memo=frozen)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay, self.updates = decay, 0
        pairs = [(a, s) for a, s in zip(self.model.state_dict().values(), model.state_dict().values()) if a is not s]
        self.averages = [a for a, s in pairs if a.is_floating_point()]
        self.weights = [s for a, s in pairs if a.is_floating_point()]
        self.copied = [(a, s) for a, s in pairs if not a.is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        """Call after each optimizer step."""
        self.updates += 1
        weight = 1 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        if self.averages:
            torch._foreach_lerp_(self.averages, self.weights, weight)
        for average, value in self.copied:
            average.copy_(value)

    def state_dict(self) -> dict:
        return {"updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
