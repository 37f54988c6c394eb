"""The task contract, and the task registry.

A task owns everything specific to one kind of prediction: how the model is built for the
data, how a uint8 batch becomes model input, the loss, the metrics, prediction with its typed
options, the plots, and how its results read in a terminal and as JSON. The trainer, the API,
the CLI and the service use this contract and nothing else of a task; adding a task touches
``tasks/`` (and its models and data) only.
"""
from __future__ import annotations

import copy
import importlib
import math
from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor, nn

from cnnlab.errors import CnnlabError, clean, unknown_name
from cnnlab.memory import check_classes
from cnnlab.tasks import TASKS
from cnnlab.tasks.options import parse_options


def clean_names(names, what: str = "classes") -> list[str]:
    """Class names (or caption words) as every task keeps them: each one printable line
    (``errors.clean``: escape sequences and control characters gone, line breaks joined), at most
    ``memory.MAX_CLASSES``. Names enter a task here, from a dataset or a checkpoint alike, so no
    terminal table, JSON answer or web page downstream can show a raw one."""
    names = list(names)
    check_classes(len(names), what)
    return [clean(n) for n in names]


class Task(ABC):
    """One kind of prediction. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]                       # the --task name
    Options: ClassVar[type]                   # its predict options (a dataclass of tasks/options.py)
    score_label: ClassVar[str]                # what ``evaluate()["score"]`` is, e.g. "top-1", "mean IoU"
    export_refusal: ClassVar[str | None] = None  # None: exports to ONNX/TorchScript; else why export refuses
    explainable: ClassVar[bool] = False       # `cnnlab explain` (feature maps, filters, CAMs) opens it up
    video: ClassVar[bool] = False             # predicts videos: ``predict_frames`` and ``format_frame``
    autocast: ClassVar[bool] = True           # trains under bf16 autocast when the precision policy allows
    bf16_end_to_end: ClassVar[bool] = False   # amp bf16-full: its networks run with bf16 weights and activations
    epoch_metrics: ClassVar[tuple[str, ...]]  # the val metrics each epoch's progress line shows, in order
    input_shape: tuple[int, int, int]         # (C, H, W) the model is fed
    channels_last: bool = True                # NHWC input (``in_memory_format``: the config's choice)

    # ------------------------------------------------------------------ construction
    @classmethod
    @abstractmethod
    def from_data(cls, cfg, train) -> "Task":
        """The task for a training split (classes, normalisation, input shape from the data)."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict) -> "Task":
        """The task a checkpoint's ``state()`` describes."""

    @abstractmethod
    def state(self) -> dict:
        """What a checkpoint must hold to rebuild the task (classes, normalisation, shapes)."""

    @abstractmethod
    def build_model(self, cfg) -> nn.Module: ...

    def in_memory_format(self, channels_last: bool) -> "Task":
        """This task feeding the model NHWC (``channels_last``) or NCHW input: itself, or a copy."""
        if channels_last == self.channels_last:
            return self
        other = copy.copy(self)
        other.channels_last = channels_last
        return other

    def new_cache(self):
        """What the task keeps across a run's epochs (captioning: a frozen encoder's features);
        the trainer holds it and passes it to ``training_step`` and ``evaluate``. None: nothing."""
        return None

    # ------------------------------------------------------------------ training and evaluation
    @abstractmethod
    def training_step(self, model: nn.Module, batch: tuple[Tensor, ...], generator: torch.Generator, *,
                      cache=None) -> tuple[dict[str, Tensor], dict[str, Tensor | int]]:
        """Loss terms (summed by the trainer) and running statistics for the progress bar:
        ``count`` (what the loss averages over) and, for tasks with one, ``correct``.
        ``cache``: the run's ``new_cache()``."""

    @abstractmethod
    def evaluate(self, model: nn.Module, batches, dist, *, cache=None, tta: int = 0) -> dict:
        """Metrics on a split; ``score`` (higher is better) picks the best checkpoint. ``cache``:
        the run's ``new_cache()``; ``tta``: the test-time augmentation level (``tta_views``)."""

    def epoch_line(self, metrics: dict) -> str:
        """The val metrics of an epoch's progress line, e.g. ``loss 0.0412 top1 0.9875 top5 1.0000``."""
        return " ".join(f"{k} {metrics[k]:.4f}" for k in self.epoch_metrics
                        if k in metrics and not math.isnan(metrics[k]))

    def for_data(self, data, source: str) -> "Task":
        """The task that scores ``data`` (another dataset than the training one): this one, when
        the data's classes are the model's; anything else is refused."""
        if [clean(c) for c in getattr(data, "classes", [])] != list(getattr(self, "classes", [])):  # as kept
            raise CnnlabError(f"--data {clean(source)}: its classes {clean(list(data.classes)[:5])}... differ "
                              f"from the checkpoint's {clean(list(self.classes)[:5])}...")
        return self

    def batch_accuracy(self, model: nn.Module, batch: tuple[Tensor, ...]) -> tuple[int, int] | None:
        """(correct, count) of ``model`` as it is (train or eval mode) on an un-augmented batch;
        None for tasks without a per-item accuracy. The train/eval guard compares the two modes."""
        return None

    def tta_views(self, level: int) -> list[str]:
        """The views ``evaluate(..., tta=level)`` averages, by name (classification); other tasks
        refuse test-time augmentation."""
        raise CnnlabError(f"--tta: test-time augmentation is for classification, not {self.name}")

    def write_plots(self, run_dir, history: list[dict], model: nn.Module, data, metrics: dict) -> list[str]:
        """The task's figures in ``run_dir``; their paths."""
        return []

    # ------------------------------------------------------------------ prediction
    def options(self, values: dict, style: str = "cli"):
        """``values`` (keyword options) checked against ``Options``: an ``Options`` instance
        (errors name them as ``--flags``, or as ``options.key`` with ``style="json"``)."""
        return parse_options(self.Options, values, self.name, style)

    @abstractmethod
    def predict(self, lm, images: list, options) -> list[dict]:
        """One JSON-ready dict per image (a file path or a uint8 (C, H, W) tensor), in order."""

    def predict_frames(self, lm, frames: list[Tensor], options) -> list[tuple[dict, Tensor]]:
        """Tasks with ``video``: per video frame (uint8 (3, H, W), one size), its JSON-ready
        prediction and the frame drawn with it (uint8 (3, H', W'), one size for every frame)."""
        raise NotImplementedError

    def format_frame(self, result: dict) -> str:
        """Tasks with ``video``: one terminal line of a frame's prediction."""
        raise NotImplementedError

    # ------------------------------------------------------------------ rendering
    @abstractmethod
    def headline(self, metrics: dict) -> str:
        """The one-line summary of a metrics dict, e.g. ``top-1 accuracy 0.9917  top-5 1.0000``."""

    @abstractmethod
    def format_metrics(self, metrics: dict) -> str:
        """The terminal report of ``evaluate``'s metrics (after a ``data / split`` heading)."""

    @abstractmethod
    def format_prediction(self, result: dict) -> str:
        """The terminal lines of one ``predict`` result."""

    def metrics_json(self, metrics: dict, full: bool = False) -> dict:
        """``evaluate``'s metrics for JSON: the numbers and names, and with ``full`` everything
        (per-class tables, the confusion matrix)."""
        return metrics if full else {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, list))
                                     and not (isinstance(v, list) and v and isinstance(v[0], list))}


def task_class(name: str) -> type[Task]:
    """The task class registered as ``name`` (``tasks.TASKS``)."""
    if name not in TASKS:
        raise unknown_name("task", name, TASKS)
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)
