"""VGG (Simonyan & Zisserman 2014): stacks of 3x3 convs and 2x2 max pools, configurations A, B, D, E.

torchvision's definition; VGG-16 has 138.4M parameters, VGG-19 143.7M (mostly the first FC layer).
``pretrained=True`` loads torchvision's ImageNet weights (``cnnlab.models.pretrained``).
"""
from __future__ import annotations

import torch
from torchvision.models import vgg as tv

from cnnlab.models.common import with_in_channels
from cnnlab.models.pretrained import IMAGENET_MEAN, IMAGENET_STD, load_imagenet_weights
from cnnlab.models.registry import register_model


class VGG(tv.VGG):
    """torchvision's VGG with the features/head split and any number of input channels."""

    def __init__(self, cfg: str, batch_norm: bool = False, num_classes: int = 1000, in_channels: int = 3,
                 dropout: float = 0.5):
        super().__init__(tv.make_layers(tv.cfgs[cfg], batch_norm), num_classes=num_classes, dropout=dropout)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.features[0] = with_in_channels(self.features[0], in_channels)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 512, H/32, W/32)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(features), 1)  # (B, 512 * 7 * 7)
        return self.classifier(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _vgg(name: str, cfg: str, batch_norm: bool, num_classes: int, in_channels: int, pretrained: bool,
         **kwargs) -> VGG:
    model = VGG(cfg, batch_norm, num_classes, in_channels, **kwargs)
    if pretrained:  # torchvision's IMAGENET1K_V1 weights; another head size keeps the last layer fresh
        load_imagenet_weights(model, name, head="classifier")
    return model


_PAPER, _BN = "Simonyan & Zisserman 2014", "Simonyan & Zisserman 2014; BatchNorm: Ioffe & Szegedy 2015"
_INFO = dict(tags=("imagenet", "classic", "pretrained"), head="classifier", pretrained=True,
             mean=IMAGENET_MEAN, std=IMAGENET_STD)


@register_model("vgg11", paper=_PAPER, **_INFO)
def vgg11(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> VGG:
    """VGG-11 (configuration A)."""
    return _vgg("vgg11", "A", False, num_classes, in_channels, pretrained, **kwargs)


@register_model("vgg11_bn", paper=_BN, **_INFO)
def vgg11_bn(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> VGG:
    """VGG-11 (configuration A) with BatchNorm after each conv."""
    return _vgg("vgg11_bn", "A", True, num_classes, in_channels, pretrained, **kwargs)


@register_model("vgg13", paper=_PAPER, **_INFO)
def vgg13(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> VGG:
    """VGG-13 (configuration B)."""
    return _vgg("vgg13", "B", False, num_classes, in_channels, pretrained, **kwargs)


@register_model("vgg13_bn", paper=_BN, **_INFO)
def vgg13_bn(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> VGG:
    """VGG-13 (configuration B) with BatchNorm after each conv."""
    return _vgg("vgg13_bn", "B", True, num_classes, in_channels, pretrained, **kwargs)


@register_model("vgg16", paper=_PAPER, **_INFO)
def vgg16(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> VGG:
    """VGG-16 (configuration D)."""
    return _vgg("vgg16", "D", False, num_classes, in_channels, pretrained, **kwargs)


@register_model("vgg16_bn", paper=_BN, **_INFO)
def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> VGG:
    """VGG-16 (configuration D) with BatchNorm after each conv."""
    return _vgg("vgg16_bn", "D", True, num_classes, in_channels, pretrained, **kwargs)


@register_model("vgg19", paper=_PAPER, **_INFO)
def vgg19(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> VGG:
    """VGG-19 (configuration E)."""
    return _vgg("vgg19", "E", False, num_classes, in_channels, pretrained, **kwargs)


@register_model("vgg19_bn", paper=_BN, **_INFO)
def vgg19_bn(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> VGG:
    """VGG-19 (configuration E) with BatchNorm after each conv."""
    return _vgg("vgg19_bn", "E", True, num_classes, in_channels, pretrained, **kwargs)
