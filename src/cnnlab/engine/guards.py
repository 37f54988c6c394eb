"""Checks at the end of a run that catch a model which trained but will not predict well.

The train/eval check: a network with BatchNorm normalises by the batch's statistics in training
mode and by its running averages in eval mode. The averages are gathered in the forward pass,
before each optimizer step, so they describe the previous weights; when late steps are large
(a high learning rate over few steps), the model scores far lower in eval mode, which is how it
predicts, than the training accuracy suggests (benchmarks/RESULTS.md, "Recipes on 10% subsets").
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from cnnlab.data.loader import Batches
from cnnlab.engine.callbacks import Callback

MAX_GAP = 0.05  # accuracy points (as a fraction) eval mode may trail train mode before we warn


@torch.no_grad()
def train_eval_accuracy(task, model: nn.Module, batches, max_batches: int = 4) -> dict | None:
    """Accuracy of ``model`` in eval mode and in train mode on the same un-augmented training
    batches: ``{"eval_acc", "train_mode_acc", "images"}``; None for tasks without an accuracy."""
    taken = [b for _, b in zip(range(max_batches), batches.epoch(0))]
    probe = copy.deepcopy(model)  # train mode updates BatchNorm buffers: never touch the real model
    hits = {}
    for mode in ("eval", "train"):  # eval first: the train-mode pass moves the probe's running statistics
        probe.train(mode == "train")
        counts = [task.batch_accuracy(probe, b) for b in taken]
        if not counts or None in counts:  # no batches, or a task without a per-item accuracy
            return None
        hits[mode] = sum(c for c, _ in counts) / max(1, sum(n for _, n in counts))
    return {"eval_acc": hits["eval"], "train_mode_acc": hits["train"], "images": sum(len(b[0]) for b in taken)}


def train_eval_warning(check: dict | None) -> str | None:
    """One line when eval mode trails train mode by more than ``MAX_GAP``, else None."""
    if not check or check["train_mode_acc"] - check["eval_acc"] <= MAX_GAP:
        return None
    return (f"warning: on {check['images']} training images the model scores {check['eval_acc']:.1%} in eval mode "
            f"but {check['train_mode_acc']:.1%} in train mode: its BatchNorm running statistics do not fit its "
            f"final weights (they are gathered before each step, and large late steps leave them behind); "
            f"try a lower --lr or more epochs")


class TrainEvalGuard(Callback):
    """At the run's end, the train/eval check on a few shuffled training batches of the final model
    (``result.train_eval``), and its warning in the run's log."""

    def on_run_end(self, run, result) -> None:
        probe = Batches(run.data["train"], run.cfg.batch_size, run.device, shuffle=True, seed=run.cfg.seed,
                        workers=run.cfg.workers)  # shuffled: class-sorted folders would give one class a batch
        result.train_eval = train_eval_accuracy(run.task, run.model, probe)
        warning = train_eval_warning(result.train_eval)
        if warning:
            run.log(warning)
