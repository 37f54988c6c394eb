"""Joint image + mask augmentation for segmentation, batched on the training device.

One random affine map per image (flip, zoom, shift, crop) is applied to the image (bilinear) and to
its mask (nearest-neighbour) through the same sampling grid, so they stay aligned pixel for
pixel; mask pixels that come from outside the image become IGNORE.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from cnnlab.data.masks import IGNORE


def augment_pairs(images: Tensor, masks: Tensor, generator: torch.Generator, flip: bool = False,
                  scale: float = 0.0, translate: int = 0, crop: float = 1.0) -> tuple[Tensor, Tensor]:
    """images (B, C, H, W) uint8, masks (B, H, W) int64 -> float images 0..255 and masks.

    flip: left-right with probability 1/2; scale: zoom by a factor drawn log-uniformly from
    [1/(1+scale), 1+scale] (zoomed-in views are cropped at a random place); translate: a
    further shift of up to this many pixels; crop: the output is a random window of this fraction
    of each side (of the zoomed image), so a batch of crops costs crop**2 of the whole images.
    """
    if not (flip or scale or translate or crop < 1):
        return images, masks
    b, _, h, w = images.shape
    dev = images.device

    def rand(n: int) -> Tensor:  # uniform in [0, 1), from the step's generator
        return torch.rand(n, generator=generator, device=generator.device).to(dev)

    if not (scale or translate or crop < 1):  # a flip alone moves pixels exactly: no resampling needed
        mirrored = (rand(b) < 0.5).view(b, 1, 1)
        return (torch.where(mirrored[:, None], images.flip(-1), images).float(),
                torch.where(mirrored, masks.flip(-1), masks))

    zoom = torch.exp((2 * rand(b) - 1) * math.log1p(scale)) if scale else torch.ones(b, device=dev)
    a = crop / zoom  # output -> input coordinates (normalised, -1..1)
    room = (1 - a).clamp(min=0)  # how far a zoomed-in crop may move and stay inside the image
    tx = (2 * rand(b) - 1) * room + (2 * rand(b) - 1) * (2 * translate / w)
    ty = (2 * rand(b) - 1) * room + (2 * rand(b) - 1) * (2 * translate / h)
    sx = torch.where(rand(b) < 0.5, -a, a) if flip else a
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, tx, a, ty
    size = [b, 1, max(1, round(h * crop)), max(1, round(w * crop))]
    grid = F.affine_grid(theta, size, align_corners=False)  # (B, h, w, 2) for the output's h, w
    out = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    shifted = (masks + 1).float()[:, None]  # 0 marks "outside the image" after sampling
    m = F.grid_sample(shifted, grid, mode="nearest", padding_mode="zeros", align_corners=False)[:, 0].long()
    m = torch.where(m == 0, IGNORE, m - 1)
    return out, m  # (B, C, h, w) float 0..255, (B, h, w) int64
