"""The two shapes a classification dataset takes in cnnlab.

* ``TensorImages``: a small set held in memory as one uint8 tensor; batches are sampled
  by index on the training device (no DataLoader, no per-sample Python).
* ``FileImages``: a file-backed set (an image-folder tree too big to cache) that decodes
  per item in DataLoader workers and resizes to one fixed size.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor


@dataclass
class TensorImages:
    """A classification split held in memory.

    images: (N, C, H, W) uint8; labels: (N,) int64; classes: names in label order.
    """

    images: Tensor
    labels: Tensor
    classes: list[str]
    name: str = ""
    skipped: list[str] = field(default_factory=list)  # bad files left out (with --skip-bad)

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"{self.name}: images must be a uint8 (N, C, H, W) tensor, "
                             f"got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{self.name}: {len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # (C, H, W)

    def subset(self, index: Tensor, name: str | None = None) -> "TensorImages":
        return TensorImages(self.images[index], self.labels[index], self.classes, name or self.name)


class FileImages(torch.utils.data.Dataset):
    """A classification split read from files, decoded per item (for DataLoader workers).

    Each item is ``(uint8 (C, H, W) tensor resized to image_shape, label)``.
    """

    def __init__(self, files: list[str | Path], labels: list[int], classes: list[str],
                 image_shape: tuple[int, int, int], name: str = ""):
        self.files, self.labels_list, self.classes = list(files), list(labels), classes
        self.image_shape, self.name = tuple(image_shape), name
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return len(self.files)

    @property
    def labels(self) -> Tensor:
        return torch.tensor(self.labels_list, dtype=torch.int64)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        from cnnlab.images import read_image, resize

        c, h, w = self.image_shape
        img = read_image(self.files[i], channels=c)
        return resize(img, (h, w)), self.labels_list[i]


ClassificationData = TensorImages | FileImages
