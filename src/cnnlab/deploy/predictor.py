"""The one contract of a model ready to predict, whatever runs it, and the one preprocessing.

    def top1(p: Predictor, path) -> str:                 # LoadedModel (eager PyTorch) or OnnxModel
        return p.task.classes[p.logits(p.read(path)[None]).argmax()]

Front ends ask a ``Predictor`` what it can do (``explainable``, ``exportable``, ``evaluable``)
instead of testing its type or its runtime's name.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from cnnlab.tasks.base import Task


@runtime_checkable
class Predictor(Protocol):
    """A trained model and the task that knows its classes, input format and outputs."""

    name: str              # the model's registry name (or the export's stem)
    task: Task
    device: torch.device   # where ``logits`` runs
    source: str            # the file it came from ("" for a model built in memory)
    runtime: str           # what runs it, for people to read: "pytorch" or "onnxruntime"

    @property
    def explainable(self) -> bool:
        """explain and inspect can open it up: a PyTorch classifier (its layers can be hooked)."""

    @property
    def exportable(self) -> bool:
        """export can write it: the PyTorch module (``.model``) and its config are at hand."""

    @property
    def evaluable(self) -> bool:
        """evaluate can score it on a dataset: the task's evaluation runs its PyTorch module."""

    def read(self, image: str | Path | Tensor) -> Tensor:
        """An image file (or a uint8 (C, H, W) tensor) as the uint8 (C, H, W) tensor it takes."""

    def logits(self, images: Tensor) -> Tensor:
        """uint8 (B, C, H, W) -> float scores (B, K) (segmentation: (B, K, h, w))."""


def model_input(task, image: str | Path | Tensor) -> Tensor:
    """The one preprocessing of predict, explain and the service, for every Predictor: an image
    file or uint8 (C, H, W) tensor, in the task's channels, resized to its input size."""
    from torch import Tensor

    from cnnlab.images import as_image, read_image, resize

    c, h, w = task.input_shape
    return resize(as_image(image, c) if isinstance(image, Tensor) else read_image(image, channels=c), (h, w))
