"""The built-in ``shapes`` scenes for detection: 64x64 RGB, 1..3 shapes each, boxes and classes.

Objects vary in kind (6 classes), colour, size (small: boxes about 10-16 px, large: 20-40 px),
rotation and overlap (circumscribed circles may overlap by 30% of the smaller diameter; every
object keeps at least half of its pixels visible). Boxes are tight around the visible pixels.
Train 5,000 / val 500 / test 1,000 scenes, each split from its own seed stream.

    data = load_dataset("shapes", "val", task="detect")
    data.images.shape, data.targets[0]    # (500, 3, 64, 64), {"boxes": (K, 4), "labels": (K,)}
"""
from __future__ import annotations

import numpy as np
import torch

from cnnlab.data.builtin.shapes import SHAPES, SPLIT_SIZES, generate_scenes
from cnnlab.data.detection import DetectionImages
from cnnlab.data.registry import SPLITS, check_image_size, register_dataset


@register_dataset("shapes", description="64x64 scenes of 1-3 coloured shapes with boxes (6 classes), "
                  "train 5000 / val 500 / test 1000", tasks=("detect",))
def detect_shapes(split: str, seed: int = 0, *, image_size: int = 64) -> DetectionImages:
    """Split ``split`` of the shapes scenes; labels are 1 + SHAPES index (0 is background)."""
    check_image_size("shapes (detect)", image_size, 32)
    stream = int(np.random.default_rng([seed, SPLITS.index(split), 0xDE7]).integers(2**62))
    scenes = generate_scenes(SPLIT_SIZES[split], seed=stream, size=image_size, max_objects=3)
    images = torch.stack([s.image for s in scenes])  # (N, 3, H, W) uint8
    targets = [{"boxes": s.boxes, "labels": s.labels} for s in scenes]
    return DetectionImages(images, targets, list(SHAPES), name=f"shapes/{split}")
