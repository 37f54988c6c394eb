"""The built-in ``shapes`` scenes with their pixel masks, for ``--task segment``.

64x64 RGB scenes of 1..3 coloured shapes (``cnnlab.data.builtin.shapes.generate_scenes``); the mask
holds 0 for background and 1 + the shape's index in ``SHAPES`` where a shape is visible.
Train 4,000 / val 500 / test 500 scenes, each split from its own seed stream.
"""
from __future__ import annotations

import torch

from cnnlab.data.builtin.shapes import SHAPES, generate_scenes
from cnnlab.data.masks import SegmentationImages
from cnnlab.data.registry import SPLITS, check_image_size, register_dataset

SEGMENT_SPLIT_SIZES = {"train": 4000, "val": 500, "test": 500}
CLASSES = ["background", *SHAPES]
COLORS = [(0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
          (145, 30, 180)]  # background black, then one distinct colour per shape kind


@register_dataset("shapes", tasks=("segment",),
                  description="scenes of 1-3 coloured shapes, 64x64 RGB, with pixel masks: background + "
                  "6 shape classes; train 4000 / val 500 / test 500")
def shapes_segment(split: str, seed: int = 0, *, image_size: int = 64) -> SegmentationImages:
    """Split ``split`` of the shapes scenes with semantic masks (N, H, W) uint8."""
    check_image_size("shapes", image_size, 32)
    scenes = generate_scenes(SEGMENT_SPLIT_SIZES[split], seed=seed * 1009 + 101 + SPLITS.index(split),
                             size=image_size)
    images = torch.stack([s.image for s in scenes])  # (N, 3, H, W) uint8
    masks = torch.stack([s.semantic_mask() for s in scenes]).to(torch.uint8)  # (N, H, W)
    return SegmentationImages(images, masks, CLASSES, f"shapes/{split}", colors=COLORS)
