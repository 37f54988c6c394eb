"""BatchNorm folded into the convolution before it, for a frozen network in eval mode.

In eval mode a BatchNorm is a per-channel scale and shift, which the convolution feeding it can
absorb (``torch.nn.utils.fusion.fuse_conv_bn_eval``): one pass over the feature map instead of
two. A frozen encoder computing features for the caption cache spends a sixth of its time in
BatchNorm otherwise (benchmarks/RESULTS.md, "Utilisation").

    fast = fold_batchnorm(encoder, "forward_features")   # an inference-only copy (torch.fx graph)
"""
from __future__ import annotations

import copy

import torch
import torch.fx
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


class _Leaves(torch.fx.Tracer):
    """Keeps convolutions (also subclasses, e.g. "same"-padded ones) and BatchNorms as graph nodes."""

    def is_leaf_module(self, m: nn.Module, name: str) -> bool:
        return isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) or super().is_leaf_module(m, name)


class _Method(nn.Module):
    def __init__(self, net: nn.Module, method: str):
        super().__init__()
        self.net, self.method = net, method

    def forward(self, x):
        return getattr(self.net, self.method)(x)


def fold_batchnorm(net: nn.Module, method: str = "forward") -> nn.Module | None:
    """An eval-mode copy of ``net.<method>`` with each BatchNorm2d that follows a Conv2d (and is
    its only reader) folded into it; None when torch.fx cannot trace the method."""
    root = _Method(copy.deepcopy(net).eval(), method)
    try:
        graph = _Leaves().trace(root)
    except Exception:  # noqa: BLE001 - data-dependent Python control flow: fx cannot trace it
        return None
    modules = dict(root.named_modules())
    for node in list(graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        source = node.args[0]
        if (not isinstance(source, torch.fx.Node) or source.op != "call_module"
                or not isinstance(modules[source.target], nn.Conv2d) or len(source.users) != 1):
            continue
        conv, bn = modules[source.target], modules[node.target]
        if bn.running_mean is None:  # track_running_stats=False: batch statistics even in eval
            continue
        parent, _, name = source.target.rpartition(".")
        setattr(root.get_submodule(parent) if parent else root, name, fuse_conv_bn_eval(conv, bn))
        node.replace_all_uses_with(source)
        graph.erase_node(node)
    graph.lint()
    folded = torch.fx.GraphModule(root, graph)
    folded.requires_grad_(False)
    return folded.eval()
