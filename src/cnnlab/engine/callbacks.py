"""Hooks into the training loop: what a run shows and records beside training itself.

The loop calls each callback, on rank 0, at these moments::

    on_run_start(run)                           after set-up (run folder, data, model) and any resume
    on_epoch_start(run, epoch)                  before the epoch's first step
    on_step_end(run, step, loss, running)       after each optimizer step
    on_validation(run, batches) -> batches      the val batches as validation will read them
    on_epoch_end(run, end)                      after the epoch's metrics row and checkpoints
    on_run_end(run, result)                     after the final evaluation and the plots

The progress line (``progress.py``), the TensorBoard log (``tensorboard.py``) and the train/eval
guard (``guards.py``) are callbacks; ``fit(cfg, callbacks=[...])`` adds yours after them.

    class PrintBest(Callback):
        def on_epoch_end(self, run, end):
            if end.improved:
                print(end.row["epoch"], end.val["score"])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class EpochEnd:
    """An epoch as it ended: its metrics row (``metrics.csv``), the task's val metrics, whether
    they improved on the best, and the training numbers of the progress line (loss, acc, img_s)."""

    row: dict
    val: dict
    improved: bool
    train: dict


class Callback:
    """A hook into ``fit``'s loop; every moment does nothing unless a subclass overrides it."""

    def on_run_start(self, run) -> None:
        pass

    def on_epoch_start(self, run, epoch: int) -> None:
        pass

    def on_step_end(self, run, step: int, loss, running: Callable[[], dict]) -> None:
        """``loss``: the step's loss on the device; ``running()``: the epoch's running numbers
        (loss, acc, img_s) at the cost of a host sync, raising when the loss is no longer finite."""

    def on_validation(self, run, batches):
        return batches

    def on_epoch_end(self, run, end: EpochEnd) -> None:
        pass

    def on_run_end(self, run, result) -> None:
        pass


class Callbacks(Callback):
    """Several callbacks called in order, as one."""

    def __init__(self, callbacks=()):
        self.callbacks = list(callbacks)

    def on_run_start(self, run) -> None:
        for c in self.callbacks:
            c.on_run_start(run)

    def on_epoch_start(self, run, epoch: int) -> None:
        for c in self.callbacks:
            c.on_epoch_start(run, epoch)

    def on_step_end(self, run, step: int, loss, running) -> None:
        for c in self.callbacks:
            c.on_step_end(run, step, loss, running)

    def on_validation(self, run, batches):
        for c in self.callbacks:
            batches = c.on_validation(run, batches)
        return batches

    def on_epoch_end(self, run, end: EpochEnd) -> None:
        for c in self.callbacks:
            c.on_epoch_end(run, end)

    def on_run_end(self, run, result) -> None:
        for c in self.callbacks:
            c.on_run_end(run, result)


class OnEpoch(Callback):
    """``fn(row, model, task)`` after each epoch's checkpoints (``cnnlab.train(on_epoch=...)``;
    benchmarks measure test accuracy against training time with it)."""

    def __init__(self, fn: Callable):
        self.fn = fn

    def on_epoch_end(self, run, end: EpochEnd) -> None:
        self.fn(end.row, run.scored_model, run.task)
