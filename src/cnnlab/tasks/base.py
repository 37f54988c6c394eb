"""What the trainer needs from a task, and the task registry.

A task owns everything specific to one kind of prediction: how the model is built for the
data, how a uint8 batch becomes model input, the loss, the metrics and the plots. The
trainer (``cnnlab.engine``) owns the loop, checkpoints, devices and processes.
"""
from __future__ import annotations

import importlib
from typing import Protocol

import torch
from torch import Tensor, nn

from cnnlab.errors import CnnlabError


class Task(Protocol):
    name: str
    export_refusal: str | None  # None: exports to ONNX/TorchScript; else why `cnnlab export` refuses
    explainable: bool           # `cnnlab explain` (feature maps, filters, CAMs) opens it up

    def build_model(self, cfg) -> nn.Module: ...

    def state(self) -> dict:
        """What a checkpoint must hold to rebuild the task (classes, normalisation, shapes)."""

    def training_step(self, model: nn.Module, batch: tuple[Tensor, ...],
                      generator: torch.Generator) -> tuple[dict[str, Tensor], dict[str, float]]:
        """Loss terms (summed by the trainer) and running statistics for the progress bar."""

    def evaluate(self, model: nn.Module, batches, dist) -> dict:
        """Metrics on a split; ``score`` (higher is better) picks the best checkpoint."""

    def predict(self, lm, images: list, **options) -> list[dict]:
        """One JSON-ready dict per image file, for ``cnnlab predict`` and the web service."""

    def write_plots(self, run_dir, history: list[dict], model: nn.Module, data, metrics: dict) -> list[str]: ...


# task name -> "module:Class", imported on first use (a task's dependencies load only when used)
TASKS = {
    "classify": "cnnlab.tasks.classify:ClassifyTask",
    "detect": "cnnlab.tasks.detect:DetectTask",
    "segment": "cnnlab.tasks.segment:SegmentTask",
    "caption": "cnnlab.tasks.caption:CaptionTask",
}


def task_class(name: str):
    """The task class registered as ``name``."""
    if name not in TASKS:
        raise CnnlabError(f"--task {name!r}: expected one of {', '.join(TASKS)}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)
