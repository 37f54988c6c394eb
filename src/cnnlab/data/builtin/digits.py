"""``digits``: scikit-learn's 1,797 real 8x8 handwritten digits (UCI optdigits test set).

Pixel values 0..16 (ink counts in 4x4 blocks of the original 32x32 scans) are scaled
to 0..255 uint8, one channel: images (N, 1, 8, 8), classes "0".."9".

The train/val/test split is FIXED: stratified 70/10/20 per class, drawn once with
``SPLIT_SEED`` and independent of the ``seed`` argument, so that accuracy on ``test``
is comparable across runs and seeds. Sizes: train 1,258, val 179, test 360.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from cnnlab.data.base import TensorImages
from cnnlab.data.registry import SPLITS, register_dataset

CLASSES = [str(d) for d in range(10)]
SPLIT_SEED = 20240607  # fixed: the split never depends on the run's seed
SPLIT_FRACTIONS = {"train": 0.7, "val": 0.1}  # test gets the rest (0.2), per class


@lru_cache(maxsize=1)
def _load() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits: images (N, 1, 8, 8) uint8 and labels (N,) int64."""
    from sklearn.datasets import load_digits  # imported here: sklearn takes ~1 s to import

    bunch = load_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    images = torch.from_numpy(pixels).unsqueeze(1)  # (N, 1, 8, 8)
    labels = torch.from_numpy(bunch.target.astype(np.int64))  # (N,)
    return images, labels


@lru_cache(maxsize=1)
def split_indices() -> dict[str, torch.Tensor]:
    """The fixed stratified split: indices into the 1,797 digits for each split."""
    _, labels = _load()
    rng = np.random.default_rng(SPLIT_SEED)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for c in range(len(CLASSES)):
        idx = rng.permutation(np.flatnonzero(labels.numpy() == c))
        n_train = round(SPLIT_FRACTIONS["train"] * len(idx))
        n_val = round(SPLIT_FRACTIONS["val"] * len(idx))
        parts["train"].append(idx[:n_train])
        parts["val"].append(idx[n_train:n_train + n_val])
        parts["test"].append(idx[n_train + n_val:])
    return {s: torch.from_numpy(np.sort(np.concatenate(p))) for s, p in parts.items()}


@register_dataset("digits", description="1,797 real 8x8 handwritten digits (scikit-learn), "
                  "fixed stratified split 70/10/20", tasks=("classify",))
def digits(split: str, seed: int = 0) -> TensorImages:
    """Split ``split`` of the digits. ``seed`` is accepted but unused: the split is fixed.

    >>> digits("test").images.shape
    torch.Size([360, 1, 8, 8])
    """
    images, labels = _load()
    index = split_indices()[split]
    return TensorImages(images[index], labels[index], list(CLASSES), name=f"digits/{split}")
