"""MobileNet-V2 (Sandler et al. 2018) and MobileNet-V3 small / large (Howard et al. 2019).

torchvision's definitions: inverted residual blocks (1x1 expansion, 3x3 depthwise, linear 1x1
projection), V3 adding squeeze-excitation and hard-swish; 3.5M parameters (V2), 2.5M (V3-small),
5.5M (V3-large) at 1000 classes. ``pretrained=True`` loads torchvision's ImageNet weights
(``IMAGENET1K_V1``, ``cnnlab.models.pretrained``): a head of another size keeps its fresh last
layer (V3's hidden 1280-wide layer is loaded), a first convolution for other than 3 input channels
is adapted from the RGB filters. Every model downsamples by 32: 32x32 images end in a 1x1 map.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.models import mobilenetv2 as tv2
from torchvision.models import mobilenetv3 as tv3

from cnnlab.models.common import with_in_channels
from cnnlab.models.pretrained import IMAGENET_MEAN, IMAGENET_STD, load_imagenet_weights
from cnnlab.models.registry import register_model


class MobileNetV2(tv2.MobileNetV2):
    """torchvision's MobileNet-V2 with the features/head split and any number of input channels."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.2):
        super().__init__(num_classes=num_classes, width_mult=width_mult, dropout=dropout)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.features[0][0] = with_in_channels(self.features[0][0], in_channels)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 1280, H/32, W/32)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(features, 1), 1)  # (B, 1280)
        return self.classifier(x)  # dropout, linear: (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class MobileNetV3(tv3.MobileNetV3):
    """torchvision's MobileNet-V3 (``arch``: small or large) with the features/head split and any
    number of input channels."""

    def __init__(self, arch: str, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.2):
        setting, last_channel = tv3._mobilenet_v3_conf(f"mobilenet_v3_{arch}")
        super().__init__(setting, last_channel, num_classes=num_classes, dropout=dropout)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.features[0][0] = with_in_channels(self.features[0][0], in_channels)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 576 small / 960 large, H/32, W/32)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(features), 1)  # (B, 576 / 960)
        return self.classifier(x)  # linear, hard-swish, dropout, linear: (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_INFO = dict(tags=("imagenet", "mobile", "pretrained"), head="classifier", pretrained=True,
             mean=IMAGENET_MEAN, std=IMAGENET_STD)


@register_model("mobilenet_v2", paper="Sandler et al. 2018", **_INFO)
def mobilenet_v2(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, width_mult: float = 1.0,
                 dropout: float = 0.2) -> MobileNetV2:
    """MobileNet-V2, 3.5M parameters at 1000 classes; ``pretrained``: torchvision's ImageNet weights
    (width_mult 1 only)."""
    model = MobileNetV2(num_classes, in_channels, width_mult, dropout)
    if pretrained:
        load_imagenet_weights(model, "mobilenet_v2", head="classifier")
    return model


@register_model("mobilenet_v3_small", paper="Howard et al. 2019", **_INFO)
def mobilenet_v3_small(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False,
                       dropout: float = 0.2) -> MobileNetV3:
    """MobileNet-V3-Small, 2.5M parameters at 1000 classes; ``pretrained``: torchvision's ImageNet weights."""
    model = MobileNetV3("small", num_classes, in_channels, dropout)
    if pretrained:
        load_imagenet_weights(model, "mobilenet_v3_small", head="classifier")
    return model


@register_model("mobilenet_v3_large", paper="Howard et al. 2019", **_INFO)
def mobilenet_v3_large(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False,
                       dropout: float = 0.2) -> MobileNetV3:
    """MobileNet-V3-Large, 5.5M parameters at 1000 classes; ``pretrained``: torchvision's ImageNet weights."""
    model = MobileNetV3("large", num_classes, in_channels, dropout)
    if pretrained:
        load_imagenet_weights(model, "mobilenet_v3_large", head="classifier")
    return model
