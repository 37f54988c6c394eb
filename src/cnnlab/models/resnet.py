"""Residual networks (He, Zhang, Ren & Sun 2016).

ImageNet ResNets 18-152 are torchvision's (ResNet-18 11.7M parameters, ResNet-152 60.2M);
``pretrained=True`` loads torchvision's ImageNet weights (``cnnlab.models.pretrained``).
The CIFAR ResNets of §4.2 (6n+2 layers: 20, 32, 44, 56, 110) are built here from torchvision's
``BasicBlock``: a 3x3 conv, three stages of n blocks with 16, 32 and 64 filters on 32x32, 16x16
and 8x8 maps, global average pooling and one FC layer; shortcuts are identities, with
zero-padded extra channels where the shape changes (option A, no parameters).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet as tv

from cnnlab.models.common import check_pretrained, with_in_channels
from cnnlab.models.pretrained import IMAGENET_MEAN, IMAGENET_STD, load_imagenet_weights
from cnnlab.models.registry import register_model

# ----------------------------------------------------------------------------- ImageNet ResNets


class ResNet(tv.ResNet):
    """torchvision's ResNet with the features/head split and any number of input channels."""

    def __init__(self, block: type[nn.Module], layers: list[int], num_classes: int = 1000, in_channels: int = 3,
                 zero_init_residual: bool = False):  # start each residual branch at zero (Goyal et al. 2017)
        super().__init__(block, layers, num_classes=num_classes, zero_init_residual=zero_init_residual)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.conv1 = with_in_channels(self.conv1, in_channels)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        x = self.layer2(self.layer1(x))  # (B, 128 or 512, H/8, W/8)
        return self.layer4(self.layer3(x))  # (B, 512 or 2048, H/32, W/32)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(features), 1))  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _resnet(name: str, block: type[nn.Module], layers: list[int], num_classes: int, in_channels: int,
            pretrained: bool, **kwargs) -> ResNet:
    model = ResNet(block, layers, num_classes, in_channels, **kwargs)
    if pretrained:  # torchvision's IMAGENET1K_V1 weights (cnnlab.models.pretrained)
        load_imagenet_weights(model, name, head="fc")
    return model


_PAPER = "He et al. 2016"
_IMAGENET = dict(paper=_PAPER, tags=("imagenet", "residual", "pretrained"), head="fc", pretrained=True,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD)


@register_model("resnet18", **_IMAGENET)
def resnet18(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2]; ``pretrained``: torchvision's ImageNet weights."""
    return _resnet("resnet18", tv.BasicBlock, [2, 2, 2, 2], num_classes, in_channels, pretrained, **kwargs)


@register_model("resnet34", **_IMAGENET)
def resnet34(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> ResNet:
    """ResNet-34: basic blocks [3, 4, 6, 3]; ``pretrained``: torchvision's ImageNet weights."""
    return _resnet("resnet34", tv.BasicBlock, [3, 4, 6, 3], num_classes, in_channels, pretrained, **kwargs)


@register_model("resnet50", **_IMAGENET)
def resnet50(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> ResNet:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3]; ``pretrained``: torchvision's ImageNet weights."""
    return _resnet("resnet50", tv.Bottleneck, [3, 4, 6, 3], num_classes, in_channels, pretrained, **kwargs)


@register_model("resnet101", **_IMAGENET)
def resnet101(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> ResNet:
    """ResNet-101: bottleneck blocks [3, 4, 23, 3]; ``pretrained``: torchvision's ImageNet weights."""
    return _resnet("resnet101", tv.Bottleneck, [3, 4, 23, 3], num_classes, in_channels, pretrained, **kwargs)


@register_model("resnet152", **_IMAGENET)
def resnet152(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False, **kwargs) -> ResNet:
    """ResNet-152: bottleneck blocks [3, 8, 36, 3]; ``pretrained``: torchvision's ImageNet weights."""
    return _resnet("resnet152", tv.Bottleneck, [3, 8, 36, 3], num_classes, in_channels, pretrained, **kwargs)


# ----------------------------------------------------------------------------- CIFAR ResNets (§4.2)


class PadShortcut(nn.Module):
    """Option-A shortcut: subsample by the stride, zero-pad the new channels (no parameters)."""

    kernel_size = 1  # it keeps every stride-th pixel, as a 1x1 conv would (read by the summary)

    def __init__(self, out_channels: int, stride: int):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]  # (B, C, H/s, W/s)
        extra = self.out_channels - x.shape[1]
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))  # (B, out_channels, H/s, W/s)


class CifarResNet(nn.Module):
    """A 6n+2-layer ResNet for 32x32 images (He et al. 2016, §4.2)."""

    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        n = (depth - 2) // 6  # residual blocks per stage
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._stage(16, 16, n, stride=1)  # (B, 16, 32, 32)
        self.layer2 = self._stage(16, 32, n, stride=2)  # (B, 32, 16, 16)
        self.layer3 = self._stage(32, 64, n, stride=2)  # (B, 64, 8, 8)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def _stage(in_channels: int, out_channels: int, n: int, stride: int) -> nn.Sequential:
        shortcut = PadShortcut(out_channels, stride) if stride != 1 or in_channels != out_channels else None
        blocks = [tv.BasicBlock(in_channels, out_channels, stride, downsample=shortcut)]
        blocks += [tv.BasicBlock(out_channels, out_channels) for _ in range(n - 1)]
        return nn.Sequential(*blocks)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (B, 16, H, W)
        return self.layer3(self.layer2(self.layer1(x)))  # (B, 64, H/4, W/4)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(features), 1))  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cifar_resnet(depth: int, num_classes: int, in_channels: int, pretrained: bool) -> CifarResNet:
    check_pretrained(f"resnet{depth}", pretrained)
    return CifarResNet(depth, num_classes, in_channels)


_CIFAR = dict(input_size=(3, 32, 32), paper="He et al. 2016, §4.2", tags=("cifar", "residual"), head="fc")


@register_model("resnet20", **_CIFAR)
def resnet20(num_classes: int = 10, in_channels: int = 3, pretrained: bool = False) -> CifarResNet:
    """CIFAR ResNet-20 (n=3), 0.27M parameters."""
    return _cifar_resnet(20, num_classes, in_channels, pretrained)


@register_model("resnet32", **_CIFAR)
def resnet32(num_classes: int = 10, in_channels: int = 3, pretrained: bool = False) -> CifarResNet:
    """CIFAR ResNet-32 (n=5), 0.46M parameters."""
    return _cifar_resnet(32, num_classes, in_channels, pretrained)


@register_model("resnet44", **_CIFAR)
def resnet44(num_classes: int = 10, in_channels: int = 3, pretrained: bool = False) -> CifarResNet:
    """CIFAR ResNet-44 (n=7), 0.66M parameters."""
    return _cifar_resnet(44, num_classes, in_channels, pretrained)


@register_model("resnet56", **_CIFAR)
def resnet56(num_classes: int = 10, in_channels: int = 3, pretrained: bool = False) -> CifarResNet:
    """CIFAR ResNet-56 (n=9), 0.85M parameters."""
    return _cifar_resnet(56, num_classes, in_channels, pretrained)


@register_model("resnet110", **_CIFAR)
def resnet110(num_classes: int = 10, in_channels: int = 3, pretrained: bool = False) -> CifarResNet:
    """CIFAR ResNet-110 (n=18), 1.7M parameters."""
    return _cifar_resnet(110, num_classes, in_channels, pretrained)
