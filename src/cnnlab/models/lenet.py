"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998) on 1x32x32 images.

C1 conv 5x5 (6) -> S2 pool -> C3 conv 5x5 (16) -> S4 pool -> C5 (120) -> F6 (84) -> output (10).
Modernised as textbooks do: tanh units, average-pool subsampling, a full C3 connection table
and a linear output layer instead of the RBF units; 61,706 parameters.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models.common import check_pretrained
from cnnlab.models.registry import register_model


class LeNet5(nn.Module):
    """LeNet-5. C5 is a 5x5 conv over the 5x5 S4 map, i.e. a fully connected layer; it is written
    as one after adaptive pooling to 5x5, so that 28x28 MNIST digits work without padding."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.features = nn.Sequential(OrderedDict(
            c1=nn.Conv2d(in_channels, 6, 5), tanh1=nn.Tanh(),  # (B, 6, 28, 28)
            s2=nn.AvgPool2d(2, 2),                               # (B, 6, 14, 14)
            c3=nn.Conv2d(6, 16, 5), tanh3=nn.Tanh(),             # (B, 16, 10, 10)
            s4=nn.AvgPool2d(2, 2),                               # (B, 16, 5, 5)
        ))
        self.head = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveAvgPool2d(5), flatten=nn.Flatten(),  # (B, 400)
            c5=nn.Linear(16 * 5 * 5, 120), tanh5=nn.Tanh(),
            f6=nn.Linear(120, 84), tanh6=nn.Tanh(),
            output=nn.Linear(84, num_classes),
        ))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 16, 5, 5) for 32x32 inputs

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("lenet5", input_size=(1, 32, 32), paper="LeCun et al. 1998", tags=("mnist", "classic"),
                head="head")
def lenet5(num_classes: int = 10, in_channels: int = 1, pretrained: bool = False, **kwargs) -> LeNet5:
    """LeNet-5 for 32x32 (or 28x28) grey digits."""
    check_pretrained("lenet5", pretrained)
    return LeNet5(num_classes, in_channels, **kwargs)
