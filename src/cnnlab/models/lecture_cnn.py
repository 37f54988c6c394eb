"""The lecture's CNN: blocks of conv -> BatchNorm -> ReLU -> pool, then fully connected layers.

    model = LectureCNN(num_classes=10, in_channels=1, widths=(32, 64, 128))
    model(torch.randn(8, 1, 28, 28)).shape   # (8, 10) logits; softmax lives in the loss

Layer names read as the lecture draws it: ``features.block1.conv``, ``features.block1.pool``,
``head.fc1``, ``head.logits``. The default trainer model, so it stays small (~0.1M parameters).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.common import check_pretrained
from cnnlab.models.registry import register_model

_POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


class LectureCNN(nn.Module):
    """Conv blocks then a small MLP head; works on any input of 8x8 or more."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, *,
                 widths: tuple[int, ...] = (32, 64, 128),  # output channels of each conv block
                 kernel_size: int = 3,
                 stride: int = 1,
                 padding: int | None = None,  # None: kernel_size // 2 ("same" for odd kernels)
                 pool: str = "max",  # 'max' | 'avg' | 'none': 2x2 stride-2 pooling after each block
                 batch_norm: bool = True,
                 hidden: int = 128,  # width of the hidden FC layer; 0 for none
                 dropout: float = 0.2):  # before the output layer
        super().__init__()
        if pool not in (*_POOLS, "none"):
            raise CnnlabError(f"pool must be 'max', 'avg' or 'none', got {pool!r}")
        if not widths:
            raise CnnlabError("widths must name at least one conv block")
        self.num_classes, self.in_channels = num_classes, in_channels
        padding = kernel_size // 2 if padding is None else padding

        blocks, c = OrderedDict(), in_channels
        for i, width in enumerate(widths, 1):
            layers = OrderedDict(conv=nn.Conv2d(c, width, kernel_size, stride, padding, bias=not batch_norm))
            if batch_norm:
                layers["norm"] = nn.BatchNorm2d(width)
            layers["relu"] = nn.ReLU(inplace=True)
            if pool != "none":
                # ceil_mode: an odd map keeps its last row, and a 1x1 map stays 1x1 (8x8 digits).
                layers["pool"] = _POOLS[pool](2, 2, ceil_mode=True)
            blocks[f"block{i}"] = nn.Sequential(layers)
            c = width
        self.features = nn.Sequential(blocks)

        head = OrderedDict(pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten())  # any h x w -> (B, C)
        if hidden:
            head.update(fc1=nn.Linear(c, hidden), relu=nn.ReLU(inplace=True))
            c = hidden
        head.update(dropout=nn.Dropout(dropout), logits=nn.Linear(c, num_classes))
        self.head = nn.Sequential(head)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, widths[-1], h, w)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("lecture_cnn", input_size=(1, 28, 28), paper="conv-BN-ReLU-pool blocks + FC, as taught",
                tags=("lecture",), head="head")
def lecture_cnn(num_classes: int = 10, in_channels: int = 1, pretrained: bool = False, **kwargs) -> LectureCNN:
    """The lecture's CNN (see :class:`LectureCNN` for ``widths``, ``pool``, ``hidden``...)."""
    check_pretrained("lecture_cnn", pretrained)
    return LectureCNN(num_classes, in_channels, **kwargs)
