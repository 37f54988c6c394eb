"""U-Net (Ronneberger, Fischer & Brox 2015): a contracting path of conv blocks and pools, an
expanding path that upsamples and concatenates the same-size encoder map (skip connection)
before two more convolutions, and a 1x1 convolution to class scores at full resolution.

    model = get_model("unet", num_classes=7, widths=(16, 32, 64, 128, 256))
    model(torch.randn(2, 3, 64, 64)).shape    # (2, 7, 64, 64)

The paper's widths are (64, 128, 256, 512, 1024), 31M parameters; the default here is a
quarter of that width (2M), which trains on a laptop CPU. Convolutions are padded ("same"),
with BatchNorm; upsampling is ``transposed`` (2x2, stride 2, as in the paper) or ``bilinear``
(interpolation + 3x3 conv).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from cnnlab.errors import CnnlabError
from cnnlab.models.common import check_pretrained
from cnnlab.models.registry import register_model
from cnnlab.models.seg_blocks import Upsample, pad_to_multiple


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """(3x3 conv -> BatchNorm -> ReLU) twice."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True))


class UNet(nn.Module):
    """Encoder widths[0..-1] with a 2x2 max pool between levels; decoder mirrors it."""

    def __init__(self, num_classes: int, in_channels: int = 3, *,
                 widths: tuple[int, ...] = (16, 32, 64, 128, 256),  # channels per level, full res first
                 upsample: str = "transposed"):
        super().__init__()
        if len(widths) < 2:
            raise CnnlabError(f"unet widths: need at least two levels, got {widths}")
        self.num_classes, self.in_channels = num_classes, in_channels
        self.down = nn.ModuleList()
        c = in_channels
        for w in widths:
            self.down.append(double_conv(c, w))
            c = w
        self.pool = nn.MaxPool2d(2)
        self.up, self.merge = nn.ModuleList(), nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(Upsample(c, w, 2, upsample))
            self.merge.append(double_conv(2 * w, w))
            c = w
        self.classifier = nn.Conv2d(c, num_classes, 1)
        self.multiple = 2 ** (len(widths) - 1)

    def forward(self, x: Tensor) -> Tensor:
        x, (h, w) = pad_to_multiple(x, self.multiple)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)  # (B, widths[i], H / 2^i, W / 2^i)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([skips.pop(), up(x)], 1))  # concatenate the skip, then convolve
        return self.classifier(x)[..., :h, :w]  # (B, K, H, W)


@register_model("unet", input_size=(3, 64, 64), paper="Ronneberger, Fischer & Brox 2015", task="segment",
                tags=("segmentation", "encoder-decoder"))
def unet(num_classes: int = 2, in_channels: int = 3, pretrained: bool = False, **kwargs) -> UNet:
    """U-Net with ``widths`` per level (default 16..256) and ``upsample`` transposed | bilinear."""
    check_pretrained("unet", pretrained)
    return UNet(num_classes, in_channels, **kwargs)
