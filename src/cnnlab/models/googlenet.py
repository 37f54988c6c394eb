"""GoogLeNet / Inception v1 (Szegedy et al. 2014), without the two auxiliary classifiers.

torchvision's definition (which adds BatchNorm after every conv); 6.6M parameters.
``pretrained=True`` loads torchvision's ImageNet weights (``cnnlab.models.pretrained``): ported
from TensorFlow, they expect pixels mapped to -1..1 (mean = std = 0.5 on the 0..1 scale, which
the registry records; torchvision's ``transform_input`` does the same from ImageNet statistics).
"""
from __future__ import annotations

import torch
from torchvision.models import GoogLeNet as TorchvisionGoogLeNet

from cnnlab.models.common import with_in_channels
from cnnlab.models.pretrained import GOOGLENET_MEAN, GOOGLENET_STD, load_imagenet_weights
from cnnlab.models.registry import register_model


class GoogLeNet(TorchvisionGoogLeNet):
    """torchvision's GoogLeNet with the features/head split and any number of input channels."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.2):
        super().__init__(num_classes=num_classes, aux_logits=False, init_weights=True, dropout=dropout)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.conv1.conv = with_in_channels(self.conv1.conv, in_channels)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool1(self.conv1(x))  # (B, 64, H/4, W/4)
        x = self.maxpool2(self.conv3(self.conv2(x)))  # (B, 192, H/8, W/8)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))  # (B, 480, H/16, W/16)
        for block in (self.inception4a, self.inception4b, self.inception4c, self.inception4d, self.inception4e):
            x = block(x)
        x = self.maxpool4(x)  # (B, 832, H/32, W/32)
        return self.inception5b(self.inception5a(x))  # (B, 1024, H/32, W/32)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(features), 1)  # (B, 1024)
        return self.fc(self.dropout(x))  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("googlenet", paper="Szegedy et al. 2014", tags=("imagenet", "classic", "pretrained"), head="fc",
                pretrained=True, mean=GOOGLENET_MEAN, std=GOOGLENET_STD)
def googlenet(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> GoogLeNet:
    """GoogLeNet (Inception v1), 6.6M parameters at 1000 classes; ``pretrained``: torchvision's ImageNet weights."""
    model = GoogLeNet(num_classes, in_channels, **kwargs)
    if pretrained:
        load_imagenet_weights(model, "googlenet", head="fc")
    return model
