"""Batched augmentation with tensor ops on the training device (as airbench does).

Works on whole uint8 or float batches (B, C, H, W); randomness comes from an explicit
``torch.Generator`` so that a resumed run draws the same numbers.
"""
from __future__ import annotations

import torch
from torch import Tensor
import torch.nn.functional as F


def random_flip(images: Tensor, generator: torch.Generator) -> Tensor:
    """Flip each image left-right with probability 1/2."""
    flip = torch.rand(len(images), generator=generator, device=generator.device) < 0.5  # (B,)
    flip = flip.to(images.device).view(-1, 1, 1, 1)
    return torch.where(flip, images.flip(-1), images)


def random_translate(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Shift each image by up to ``max_shift`` pixels in x and y, filling with zeros.

    Implemented as a zero pad followed by one random crop per image, gathered in one go.
    """
    if max_shift <= 0:
        return images
    b, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)  # (B, C, H + 2s, W + 2s)
    shifts = torch.randint(0, 2 * max_shift + 1, (2, b), generator=generator,
                           device=generator.device).to(images.device)
    rows = (shifts[0].view(b, 1) + torch.arange(h, device=images.device)).view(b, 1, h, 1)
    cols = (shifts[1].view(b, 1) + torch.arange(w, device=images.device)).view(b, 1, 1, w)
    batch = torch.arange(b, device=images.device).view(b, 1, 1, 1)
    chans = torch.arange(images.shape[1], device=images.device).view(1, -1, 1, 1)
    return padded[batch, chans, rows, cols]  # (B, C, H, W)


def augment(images: Tensor, generator: torch.Generator, flip: bool = False, translate: int = 0) -> Tensor:
    """The training-time augmentation pipeline used by the classification task."""
    if flip:
        images = random_flip(images, generator)
    if translate:
        images = random_translate(images, translate, generator)
    return images
