"""bf16 end to end: a network's weights and activations in bf16, its fp32 parameters the master copy.

Autocast casts each operation's inputs as it runs: a convolution's fp32 weights every step, and
activations that left a BatchNorm in fp32 at the next convolution. ``Bf16Forward`` casts the
weights once per step and runs the whole forward in bf16 (normalisation layers keep their fp32
parameters and running statistics; their bf16 inputs are normalised in fp32 and come out bf16),
then returns fp32 outputs, so the loss is computed in fp32. The backward of the casts delivers
fp32 gradients to the model's own fp32 parameters: the optimizer, the weight averaging and the
checkpoints see fp32, as before (mixed precision with master weights, Micikevicius et al. 2018).

    step_model = Bf16Forward(model)        # the training step calls it in place of the model
    loss = F.cross_entropy(step_model(images), labels)    # images: fp32, logits: fp32
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)  # fp32 parameters and statistics


class Bf16Forward(nn.Module):
    """Calls ``model`` with bf16 copies of its non-normalisation weights and bf16 inputs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        kept = {id(p) for m in model.modules() if isinstance(m, NORMS) for p in m.parameters(recurse=False)}
        self.cast = [n for n, p in model.named_parameters() if id(p) not in kept]

    def forward(self, *args, **kwargs):
        params = dict(self.model.named_parameters())
        weights = {n: params[n].to(torch.bfloat16) for n in self.cast}  # differentiable: fp32 grads flow back
        with torch.autocast(next(iter(params.values())).device.type, enabled=False):
            out = functional_call(self.model, weights, _cast(args, torch.bfloat16), _cast(kwargs, torch.bfloat16),
                                  strict=False)
        return _cast(out, torch.float32)


def _cast(x, dtype: torch.dtype):
    """Floating tensors in ``x`` (nested tuples, lists, dicts) to ``dtype``; everything else as is."""
    if isinstance(x, torch.Tensor):
        return x.to(dtype) if x.is_floating_point() else x
    if isinstance(x, (list, tuple)):
        return type(x)(_cast(v, dtype) for v in x)
    if isinstance(x, dict):
        return {k: _cast(v, dtype) for k, v in x.items()}
    return x
