"""Batched augmentation with tensor ops on the training device (as airbench does).

Works on whole uint8 or float batches (B, C, H, W); randomness comes from an explicit
``torch.Generator`` so that a resumed run draws the same numbers.
"""
from __future__ import annotations

import torch
from torch import Tensor


def random_flip(images: Tensor, generator: torch.Generator) -> Tensor:
    """Flip each image left-right with probability 1/2."""
    flip = torch.rand(len(images), generator=generator, device=generator.device) < 0.5  # (B,)
    flip = flip.to(images.device).view(-1, 1, 1, 1)
    return torch.where(flip, images.flip(-1), images)


def _reflect(index: Tensor, size: int) -> Tensor:
    """Map indices in [-size+1, 2*size-2] into [0, size-1] by mirroring at the borders."""
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)


def random_translate(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Shift each image by up to ``max_shift`` pixels in x and y, filling with the mirrored border.

    The same as a reflect pad followed by one random crop per image (airbench), done as one
    gather with reflected indices, so nothing is padded.
    """
    b, c, h, w = images.shape
    max_shift = min(max_shift, h - 1, w - 1)  # one mirror image reaches at most this far
    if max_shift <= 0:
        return images
    shifts = torch.randint(-max_shift, max_shift + 1, (2, b), generator=generator,
                           device=generator.device).to(images.device)
    rows = _reflect(shifts[0].view(b, 1) + torch.arange(h, device=images.device), h).view(b, 1, h, 1)
    cols = _reflect(shifts[1].view(b, 1) + torch.arange(w, device=images.device), w).view(b, 1, 1, w)
    batch = torch.arange(b, device=images.device).view(b, 1, 1, 1)
    chans = torch.arange(c, device=images.device).view(1, -1, 1, 1)
    return images[batch, chans, rows, cols]  # (B, C, H, W)


def augment(images: Tensor, generator: torch.Generator, flip: bool = False, translate: int = 0) -> Tensor:
    """The training-time augmentation pipeline used by the classification task."""
    if flip:
        images = random_flip(images, generator)
    if translate:
        images = random_translate(images, translate, generator)
    return images
