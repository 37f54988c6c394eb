"""Lookahead weight averaging, as airbench94 trains: late in training, every few steps the weights
jump back to an exponential moving average of themselves.

    la = Lookahead(model, total_steps)
    ... optimizer.step(); la.step(global_step)      # global_step counts from 1
    la.end_epoch()                                  # the weights become the average at each epoch end

From ``start`` (a fraction of the steps) on, every ``every`` steps: ``average <- rho * average + (1 -
rho) * weights`` and then ``weights <- average``, with ``rho = decay**every * (step / total)**power``:
little averaging at first, strong averaging as the learning rate anneals. Every trainable
parameter and floating-point buffer takes part (BatchNorm running statistics too), as in airbench;
a frozen module's tensors never change and are left alone (writing them would also mark a frozen
encoder's weights as new, and the caption task's feature cache would start again).
"""
from __future__ import annotations

import torch
from torch import nn


class Lookahead:
    def __init__(self, model: nn.Module, total_steps: int, start: float = 0.3, every: int = 5,
                 decay: float = 0.95, power: float = 3.0):
        self.model, self.total = model, max(total_steps, 1)
        self.start, self.every, self.decay, self.power = start, every, decay, power
        self.average: dict[str, torch.Tensor] | None = None
        self.names = _averaged_names(model)

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.model.state_dict().items() if k in self.names}

    @torch.no_grad()
    def step(self, step: int) -> None:
        """Call after the optimizer step number ``step`` (1-based, counted over the whole run)."""
        if step < self.start * self.total or step % self.every:
            return
        tensors = self._tensors()
        if self.average is None:
            self.average = {k: v.detach().clone() for k, v in tensors.items()}
            return
        rho = self.decay ** self.every * (step / self.total) ** self.power
        for k, v in tensors.items():
            self.average[k].lerp_(v, 1 - rho)
            v.copy_(self.average[k])

    @torch.no_grad()
    def end_epoch(self) -> None:
        """Set the weights to the average (what is evaluated and saved)."""
        if self.average is not None:
            for k, v in self._tensors().items():
                v.copy_(self.average[k])

    def state_dict(self) -> dict | None:
        return self.average

    def load_state_dict(self, average: dict | None) -> None:
        """Restore a saved average (None: not started yet), on the model's device."""
        if average is not None:
            tensors = self._tensors()
            average = {k: v.to(tensors[k].device) for k, v in average.items() if k in tensors}
        self.average = average


def _averaged_names(model: nn.Module) -> set[str]:
    """State-dict names of the trainable parameters and of the floating-point buffers of modules
    that are not frozen (a module whose own parameters all have ``requires_grad=False``)."""
    names = set()
    for module_name, m in model.named_modules():
        own = list(m.parameters(recurse=False))
        if own and not any(p.requires_grad for p in own):
            continue
        prefix = f"{module_name}." if module_name else ""
        names.update(prefix + n for n, p in m.named_parameters(recurse=False) if p.requires_grad)
        names.update(prefix + n for n, b in m.named_buffers(recurse=False) if b is not None and b.is_floating_point())
    return names
