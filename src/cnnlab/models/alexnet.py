"""AlexNet (Krizhevsky, Sutskever & Hinton 2012) and ZFNet (Zeiler & Fergus 2013).

AlexNet is torchvision's single-tower version (no LRN, 64-192-384-256-256 filters; 61.1M
parameters). ZFNet keeps AlexNet's head and changes the first layers after looking at what
they learned: 7x7 stride-2 filters instead of 11x11 stride-4, and stride 2 in layer 2.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import AlexNet as TorchvisionAlexNet

from cnnlab.models.common import check_pretrained, with_in_channels
from cnnlab.models.registry import register_model


class MaxPool(nn.MaxPool2d):
    """Overlapping max pool that also takes a map smaller than its window (it pools what is
    there), so that 32x32 images get through; identical to ``nn.MaxPool2d`` on larger maps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, (h, w) = self.kernel_size, x.shape[-2:]
        if h < k or w < k:
            x = F.pad(x, (0, max(k - w, 0), 0, max(k - h, 0)), value=float("-inf"))
        return super().forward(x)


class AlexNet(TorchvisionAlexNet):
    """torchvision's AlexNet with the features/head split and any number of input channels."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
        super().__init__(num_classes=num_classes, dropout=dropout)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.features[0] = with_in_channels(self.features[0], in_channels)
        for i, layer in enumerate(self.features):
            if isinstance(layer, nn.MaxPool2d):
                self.features[i] = MaxPool(layer.kernel_size, layer.stride)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 256, 6, 6) at 224x224

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(features), 1)  # (B, 256 * 6 * 6)
        return self.classifier(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class ZFNet(AlexNet):
    """ZFNet: AlexNet's head on Zeiler & Fergus' layers (Fig. 3; sizes at 224x224).

    Pools round up (ceil mode) to give the paper's 55 -> 26 -> 13 -> 6 maps; each of the first
    two layers ends with contrast normalisation across feature maps (LRN).
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
        super().__init__(num_classes, in_channels, dropout)

        def pool() -> MaxPool:
            return MaxPool(3, 2, ceil_mode=True)

        self.features = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(in_channels, 96, 7, stride=2, padding=1), relu1=nn.ReLU(inplace=True),  # 110x110
            pool1=pool(), norm1=nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0),                          # 55x55
            conv2=nn.Conv2d(96, 256, 5, stride=2), relu2=nn.ReLU(inplace=True),                      # 26x26
            pool2=pool(), norm2=nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0),                          # 13x13
            conv3=nn.Conv2d(256, 384, 3, padding=1), relu3=nn.ReLU(inplace=True),
            conv4=nn.Conv2d(384, 384, 3, padding=1), relu4=nn.ReLU(inplace=True),
            conv5=nn.Conv2d(384, 256, 3, padding=1), relu5=nn.ReLU(inplace=True),
            pool5=pool(),                                                                          # 6x6
        ))


@register_model("alexnet", paper="Krizhevsky et al. 2012", tags=("imagenet", "classic"), head="classifier")
def alexnet(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> AlexNet:
    """AlexNet, 61.1M parameters at 1000 classes."""
    check_pretrained("alexnet", pretrained)
    return AlexNet(num_classes, in_channels, **kwargs)


@register_model("zfnet", paper="Zeiler & Fergus 2013", tags=("imagenet", "classic"), head="classifier")
def zfnet(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> ZFNet:
    """ZFNet, 62.4M parameters at 1000 classes."""
    check_pretrained("zfnet", pretrained)
    return ZFNet(num_classes, in_channels, **kwargs)
