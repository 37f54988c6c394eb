"""Batches for the trainer: index sampling for in-memory sets, DataLoader workers for files.

Every epoch's order is a pure function of ``(seed, epoch)``, so a run resumed at step k of
epoch e sees exactly the batches it would have seen. Under DDP each process takes every
``world``-th index of the same permutation.
"""
from __future__ import annotations

import re

from collections.abc import Iterator

import torch
from torch import Tensor

from cnnlab.data.base import FileImages, TensorImages
from cnnlab.data.detection import DetectionImages
from cnnlab.errors import CnnlabError


def epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g)


class Batches:
    """Iterate (images uint8 (B, C, H, W), labels (B,)) on ``device``; for detection data,
    (images, targets: list of B dicts of boxes (K, 4) and labels (K,)), K varying per image.

    shuffle=False walks the data in order (evaluation); ``rank``/``world`` shard it for DDP.
    """

    def __init__(self, data: TensorImages | FileImages | DetectionImages, batch_size: int, device: torch.device,
                 shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1, workers: int = 2,
                 drop_last: bool = False):
        self.data, self.batch_size, self.device = data, batch_size, device
        self.shuffle, self.seed, self.rank, self.world = shuffle, seed, rank, world
        self.workers, self.drop_last = workers, drop_last
        if isinstance(data, TensorImages):  # move the whole uint8 set to the device once
            self._images = data.images.to(device)
            self._labels = data.labels.to(device)
        elif isinstance(data, DetectionImages):
            self._images = data.images.to(device)
            self._targets = [{k: v.to(device) for k, v in t.items()} for t in data.targets]

    def _indices(self, epoch: int) -> Tensor:
        n = len(self.data)
        order = epoch_permutation(n, self.seed, epoch) if self.shuffle else torch.arange(n)
        return order[self.rank::self.world]

    def steps_per_epoch(self) -> int:
        n = len(self._indices(0))
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[tuple[Tensor, Tensor | list[dict]]]:
        """The batches of ``epoch``, beginning at step ``start_step`` (for resume)."""
        idx = self._indices(epoch)
        steps = self.steps_per_epoch()
        chunks = [idx[i * self.batch_size:(i + 1) * self.batch_size] for i in range(start_step, steps)]
        if isinstance(self.data, TensorImages):
            for chunk in chunks:
                chunk = chunk.to(self.device)
                yield self._images[chunk], self._labels[chunk]
        elif isinstance(self.data, DetectionImages):
            for chunk in chunks:
                yield self._images[chunk.to(self.device)], [self._targets[i] for i in chunk.tolist()]
        else:
            loader = torch.utils.data.DataLoader(
                self.data, batch_sampler=[c.tolist() for c in chunks], num_workers=self.workers,
                pin_memory=self.device.type == "cuda", persistent_workers=False)
            try:
                for images, labels in loader:
                    yield (images.to(self.device, non_blocking=True),
                           labels.to(self.device, non_blocking=True))
            except CnnlabError as e:  # from a worker, its message carries the worker's traceback
                raise type(e)(_worker_message(str(e))) from None


def _worker_message(text: str) -> str:
    """The error's own message out of DataLoader's "Caught X in DataLoader worker ... Original
    Traceback ..." text: its last line, without the exception's class name."""
    if "Original Traceback" not in text:
        return text
    last = [line for line in text.splitlines() if line.strip()][-1]
    return re.sub(r"^[\w.]+(Error|Exception): ", "", last.strip())
