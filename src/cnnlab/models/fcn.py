"""Fully convolutional networks for semantic segmentation (Long, Shelhamer & Darrell 2015).

A classifier body downsamples to stride 32; a 1x1 "score" convolution gives class scores
there, which are upsampled back to the input size. FCN-32s upsamples them in one step;
FCN-16s first adds the scores of the stride-16 map (a skip connection), FCN-8s those of the
stride-16 and stride-8 maps, so finer layers restore the detail the pooling lost.

    model = get_model("fcn8s", num_classes=12, backbone="resnet18", upsample="bilinear")
    model(torch.randn(2, 3, 360, 480)).shape    # (2, 12, 360, 480) class scores per pixel

Backbones: lecture_cnn (five conv-pool blocks), vgg11/vgg16 (the paper's), resnet18/34/50 and
efficientnet_lite0; ``pretrained=True`` loads their ImageNet weights (EfficientNet-Lite0's from its
package, the others torchvision's from the torch hub cache: ``cnnlab.models.pretrained``). Upsampling: ``transposed``
(learned, initialised bilinear, as in the paper) or ``bilinear`` (interpolation + 3x3 conv).
"""
from __future__ import annotations

from torch import Tensor, nn

from cnnlab.models.backbones import FeaturePyramid
from cnnlab.models.registry import register_model
from cnnlab.models.seg_blocks import Upsample, pad_to_multiple

OUTPUT_STRIDE = 32  # inputs are padded to a multiple of this, outputs cropped back


class FCN(nn.Module):
    """FCN-{32,16,8}s: ``skips`` = 0, 1 or 2 finer maps whose scores are fused in."""

    def __init__(self, num_classes: int, in_channels: int = 3, *, skips: int = 2, backbone: str = "resnet18",
                 pretrained: bool = False, upsample: str = "transposed",
                 head_channels: int = 256,  # width of the 3x3 conv on the stride-32 map (the paper's fc6/fc7)
                 dropout: float = 0.1, freeze_stride: int = 0, backbone_args: dict | None = None):
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.backbone = FeaturePyramid(backbone, in_channels, pretrained, freeze_stride, **(backbone_args or {}))
        strides = self.backbone.strides[-(skips + 1):]  # e.g. [8, 16, 32] for FCN-8s
        self.strides = strides
        deepest = self.backbone.channels[strides[-1]]
        self.head = nn.Sequential(nn.Conv2d(deepest, head_channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(head_channels), nn.ReLU(inplace=True), nn.Dropout2d(dropout),
                                  nn.Conv2d(head_channels, num_classes, 1))  # scores at the deepest stride
        # scores of each finer map (the paper's score_pool4, score_pool3), fused coarse to fine
        self.score = nn.ModuleList(nn.Conv2d(self.backbone.channels[s], num_classes, 1) for s in strides[:-1])
        self.up = nn.ModuleList(Upsample(num_classes, num_classes, strides[i + 1] // strides[i], upsample)
                                for i in range(len(strides) - 1))
        self.final = Upsample(num_classes, num_classes, strides[0], upsample)
        for conv in self.score:  # the paper zero-initialises the skip scores: training starts at FCN-32s
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        x, (h, w) = pad_to_multiple(x, OUTPUT_STRIDE)
        feats = self.backbone(x)
        scores = self.head(feats[self.strides[-1]])  # (B, K, H/32, W/32)
        for i in reversed(range(len(self.strides) - 1)):
            scores = self.up[i](scores) + self.score[i](feats[self.strides[i]])  # (B, K, H/s, W/s)
        out = self.final(scores)  # (B, K, H, W) padded
        return out[..., :h, :w]


def _fcn(skips: int, num_classes: int, in_channels: int, pretrained: bool, backbone: str | None,
         **kwargs) -> FCN:
    return FCN(num_classes, in_channels, skips=skips, backbone=backbone or "resnet18", pretrained=pretrained,
               **kwargs)


_PAPER = "Long, Shelhamer & Darrell 2015"
_INFO = dict(input_size=(3, 360, 480), paper=_PAPER, task="segment", tags=("segmentation", "fcn", "backbone"))


@register_model("fcn32s", **_INFO)
def fcn32s(num_classes: int = 21, in_channels: int = 3, pretrained: bool = False, backbone: str | None = None,
           **kwargs) -> FCN:
    """FCN-32s: stride-32 scores upsampled 32x in one step."""
    return _fcn(0, num_classes, in_channels, pretrained, backbone, **kwargs)


@register_model("fcn16s", **_INFO)
def fcn16s(num_classes: int = 21, in_channels: int = 3, pretrained: bool = False, backbone: str | None = None,
           **kwargs) -> FCN:
    """FCN-16s: stride-32 scores upsampled 2x plus the stride-16 scores, then 16x."""
    return _fcn(1, num_classes, in_channels, pretrained, backbone, **kwargs)


@register_model("fcn8s", **_INFO)
def fcn8s(num_classes: int = 21, in_channels: int = 3, pretrained: bool = False, backbone: str | None = None,
          **kwargs) -> FCN:
    """FCN-8s: as FCN-16s, plus the stride-8 scores, then 8x."""
    return _fcn(2, num_classes, in_channels, pretrained, backbone, **kwargs)
