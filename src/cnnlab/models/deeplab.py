"""DeepLabV3+ (Chen et al. 2018): atrous spatial pyramid pooling over a classifier body, and a
decoder that brings back the detail of finer feature maps.

The ASPP module (torchvision's: 1x1, three dilated 3x3 convolutions and a global-pooling branch,
concatenated and projected) sees the whole scene at the deepest stride; the decoder upsamples its
output and fuses each finer map in turn (a 1x1 projection to ``skip_channels``, concatenation, a
3x3 convolution), ending at stride 4, where thin objects (poles, signs) are still a few pixels
wide. The paper fuses stride 4 alone; ``skips=(8, 4)`` adds stride 8 on the way down.

    model = get_model("deeplabv3plus", num_classes=11, backbone="efficientnet_lite0", pretrained=True)
    model(torch.randn(2, 3, 360, 480)).shape    # (2, 11, 360, 480) class scores per pixel
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.segmentation.deeplabv3 import ASPP

from cnnlab.errors import CnnlabError
from cnnlab.models.backbones import FeaturePyramid
from cnnlab.models.registry import register_model
from cnnlab.models.seg_blocks import pad_to_multiple

OUTPUT_STRIDE = 32  # inputs are padded to a multiple of this, outputs cropped back


def conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class DeepLabV3Plus(nn.Module):
    """ASPP on the deepest map, then a decoder over the ``skips`` strides (coarse to fine)."""

    def __init__(self, num_classes: int, in_channels: int = 3, *, backbone: str = "resnet18",
                 pretrained: bool = False, skips: tuple[int, ...] = (4,), aspp_rates: tuple[int, ...] = (2, 4, 6),
                 aspp_channels: int = 128, skip_channels: int = 48, head_channels: int = 128,
                 freeze_stride: int = 0, backbone_args: dict | None = None):
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.backbone = FeaturePyramid(backbone, in_channels, pretrained, freeze_stride, **(backbone_args or {}))
        deepest = self.backbone.strides[-1]
        self.skips = tuple(sorted((int(s) for s in skips), reverse=True))
        bad = [s for s in self.skips if s not in self.backbone.channels or s >= deepest]
        if bad or not self.skips:
            raise CnnlabError(f"deeplabv3plus skips {list(skips)}: expected strides finer than {deepest} among "
                              f"{self.backbone.strides} (backbone {backbone})")
        self.aspp = ASPP(self.backbone.channels[deepest], list(aspp_rates), aspp_channels)
        self.project = nn.ModuleList(conv_bn_relu(self.backbone.channels[s], skip_channels, 1) for s in self.skips)
        widths = [aspp_channels] + [head_channels] * len(self.skips)
        self.fuse = nn.ModuleList(conv_bn_relu(widths[i] + skip_channels, head_channels)
                                  for i in range(len(self.skips)))
        self.classifier = nn.Conv2d(head_channels, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        x, (h, w) = pad_to_multiple(x, OUTPUT_STRIDE)
        feats = self.backbone(x)
        y = self.aspp(feats[self.backbone.strides[-1]])  # (B, aspp_channels, H/32, W/32)
        for stride, project, fuse in zip(self.skips, self.project, self.fuse):
            skip = project(feats[stride])
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = fuse(torch.cat([y, skip], 1))  # (B, head_channels, H/stride, W/stride)
        out = F.interpolate(self.classifier(y), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out[..., :h, :w]  # (B, K, H, W)


@register_model("deeplabv3plus", input_size=(3, 360, 480), paper="Chen et al. 2018 (DeepLabV3+)",
                task="segment", tags=("segmentation", "deeplab", "backbone"))
def deeplabv3plus(num_classes: int = 21, in_channels: int = 3, pretrained: bool = False,
                  backbone: str | None = None, **kwargs) -> DeepLabV3Plus:
    """DeepLabV3+: ASPP over the backbone's stride-32 map, decoded through the stride-4 map."""
    return DeepLabV3Plus(num_classes, in_channels, backbone=backbone or "resnet18", pretrained=pretrained,
                         **kwargs)
