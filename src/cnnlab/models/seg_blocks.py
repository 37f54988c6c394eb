"""Pieces shared by the segmentation models: upsampling and padding to the output stride."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnlab.errors import CnnlabError

UPSAMPLING = ("transposed", "bilinear")


def bilinear_kernel(channels: int, kernel_size: int) -> Tensor:
    """(C, C, k, k) weights that make a transposed convolution bilinear interpolation per channel
    (how Long et al. 2015 initialise their upsampling layers)."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float32)
    filt = 1 - (og - center).abs() / factor  # (k,)
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    weight[range(channels), range(channels)] = filt[:, None] * filt[None, :]
    return weight


class Upsample(nn.Module):
    """Upsample by an integer ``factor`` and map ``in_channels`` to ``out_channels``.

    mode "transposed": a learned transposed convolution (kernel 2 * factor, stride factor),
    initialised to bilinear interpolation when the channel counts agree;
    mode "bilinear": bilinear interpolation followed by a 3x3 convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, factor: int, mode: str = "transposed"):
        super().__init__()
        if mode not in UPSAMPLING:
            raise CnnlabError(f"upsample {mode!r}: expected one of {', '.join(UPSAMPLING)}")
        self.factor, self.mode = factor, mode
        if mode == "transposed":
            self.conv = nn.ConvTranspose2d(in_channels, out_channels, 2 * factor, factor, factor // 2,
                                           bias=False)
            if in_channels == out_channels:
                with torch.no_grad():
                    self.conv.weight.copy_(bilinear_kernel(in_channels, 2 * factor))
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "bilinear":
            x = F.interpolate(x, scale_factor=self.factor, mode="bilinear", align_corners=False)
        return self.conv(x)  # (B, out_channels, H * factor, W * factor)


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Zero-pad (B, C, H, W) at the bottom and right to multiples of ``multiple``; returns the
    padded tensor and the original (H, W) to crop the output back to."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))  # inputs are normalised: zero is the mean colour
    return x, (h, w)
