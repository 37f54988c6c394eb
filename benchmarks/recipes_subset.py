"""Every shipped recipe on a 10% subset of its data, next to the task's default model on that subset.

    python benchmarks/recipes_subset.py                                   # every recipe in recipes/
    python benchmarks/recipes_subset.py --recipes fashion-mnist cifar10   # some of them
    python benchmarks/recipes_subset.py --fraction 0.1 --seed 0

Why: a recipe is tuned on its full dataset; users point it at their own, often smaller, data. On
a tenth of the data each epoch has a tenth of the steps, so a schedule, warm-up or BatchNorm
setting that only works with many steps per epoch shows up here (an issue: the Fashion-MNIST
recipe on 8,000 images scored 74% in eval mode while training at 97%).

Each recipe trains as written (``cnnlab.train(config=recipe)``) with only its ``data`` replaced by
the subset; the default is ``cnnlab.train(task=..., data=subset)`` with nothing else set
(``lecture_cnn`` for classification; for the other tasks, the same name as their backbone or
encoder: an FCN-8s, a Faster R-CNN, a captioner over ``lecture_cnn``), except that its batch is
cut to the training split's size when that is smaller than the default 128, and it keeps the
recipe's ``val_fraction`` so that both train on the same images.

The subset: the training split (after the recipe's own ``val_fraction`` carve) keeps ``fraction``
of its images, stratified by class for classification; val and test splits of 500 images or more
keep ``fraction`` too, smaller ones (CamVid's 101 val images, its only scored split here) are kept
whole. Scores are on the test split, or on val where the data has none (CamVid). ``gap`` is
train-mode minus eval-mode accuracy of the last epoch's model (as evaluated and saved) on the same
2,048 un-augmented, shuffled training images (classification only).
Prints a table; writes nothing but temporary run folders (copy figures into RESULTS.md by hand).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import cnnlab
from cnnlab.data import load_dataset
from cnnlab.data.base import TensorImages
from cnnlab.data.loader import Batches
from cnnlab.data.registry import register_dataset
from cnnlab.engine.config import TrainConfig
from cnnlab.tasks.base import task_class

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
# recipe name -> the data it is benchmarked on (None: the recipe's own ``data``)
RECIPES = {
    "fashion-mnist": None,                       # /usr/share/datasets/fashion-mnist
    "cifar10": str(SHARED / "cifar10"),
    "camvid": f"camvid:{SHARED / 'camvid'}",
    "segment-shapes": None,
    "detect-shapes": None,
    "caption-shapes": None,
}
KEEP_WHOLE_BELOW = 500  # val/test splits smaller than this are not cut


# ---------------------------------------------------------------------------------------------
# the subset, registered as a dataset so that the trainer (and its test split) reads it by name
# ---------------------------------------------------------------------------------------------

def subset_index(data, fraction: float, seed: int) -> torch.Tensor:
    """Indices of ``fraction`` of ``data``: per class for single-label data, else uniformly."""
    rng = np.random.default_rng(seed)
    labels = getattr(data, "labels", None)
    if isinstance(data, TensorImages) and isinstance(labels, torch.Tensor) and labels.ndim == 1:
        y = labels.numpy()
        parts = [rng.permutation(np.flatnonzero(y == c))[:round(fraction * (y == c).sum())] for c in np.unique(y)]
        index = np.concatenate(parts)
    else:
        index = rng.permutation(len(data))[:max(1, round(fraction * len(data)))]
    return torch.from_numpy(np.sort(index))


def take(data, index: torch.Tensor):
    """``data`` at ``index``, of the same type (subclasses of TensorImages keep their class)."""
    if type(data).subset is not TensorImages.subset:  # its own subset (segmentation, detection)
        return data.subset(index)
    return dataclasses.replace(data, images=data.images[index], labels=data.labels[index])


def register_subset(data: str, task: str, fraction: float, seed: int) -> str:
    """Register ``data`` cut to ``fraction`` under a new name for ``task``; returns the name."""
    name = f"{data}@{fraction:g}"

    def builder(split: str, seed_: int = 0, **opts):
        full = load_dataset(data, split, seed=seed_, task=task, **opts)
        if split != "train" and len(full) < KEEP_WHOLE_BELOW:
            return full
        return take(full, subset_index(full, fraction, seed))

    try:
        register_dataset(name, description=f"{fraction:.0%} of {data}", tasks=(task,))(
            lambda split, seed=0, **opts: builder(split, seed, **opts))
    except ValueError:
        pass  # registered by an earlier recipe with the same data and task
    return name


# ---------------------------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------------------------

def train(label: str, probe_data=None, **kwargs) -> dict:
    """``cnnlab.train`` in a temporary folder: its score, training seconds and, for classification
    (``probe_data``: the training split), the last epoch's train-/eval-mode accuracy gap."""
    probe = None
    if probe_data is not None:  # shuffled: class-sorted folders would give one-class batches
        probe = [b for _, b in zip(range(4), Batches(probe_data, 512, torch.device("cpu"), shuffle=True,
                                                     seed=1).epoch(0))]
    modes = {}

    def on_epoch(row, model, task):
        if probe:
            modes.update(eval=accuracy(model, task, probe, "eval"), train=accuracy(model, task, probe, "train"))

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        try:
            r = cnnlab.train(out=out, plots=False, log=lambda *a, **k: None, on_epoch=on_epoch, **kwargs)
        except Exception as e:  # a benchmark row, not a crash: say what failed
            print(f"  {label}: failed: {type(e).__name__}: {e}", flush=True)
            return {"error": f"{type(e).__name__}"}
        wall = time.perf_counter() - t0
    scored = r.test if r.test is not None else r.best
    gap = modes["train"] - modes["eval"] if modes else None
    row = {"score": scored["score"], "split": "test" if r.test is not None else "val",
           "train_s": sum(h["seconds"] for h in r.history), "wall_s": wall, "epochs": len(r.history), "gap": gap}
    print(f"  {label}: {row['split']} score {row['score']:.4f}, {row['epochs']} epochs, "
          f"{row['train_s']:.0f} s training ({wall:.0f} s in all)"
          + (f"; last epoch on {sum(len(y) for _, y in probe)} training images: eval mode {modes['eval']:.4f}, "
             f"train mode {modes['train']:.4f}" if modes else ""), flush=True)
    return row


@torch.no_grad()
def accuracy(model, task, batches, mode: str) -> float:
    """Top-1 of a copy of ``model`` in ``mode`` ("eval": running statistics, "train": each batch's)."""
    probe = copy.deepcopy(model).train(mode == "train")  # a copy: train mode moves running statistics
    device = next(probe.parameters()).device
    correct = sum((probe(task.prepare(x.to(device))).argmax(1).cpu() == y).sum().item() for x, y in batches)
    return correct / sum(len(y) for _, y in batches)


def bench(recipe_name: str, fraction: float, seed: int) -> dict:
    recipe = ROOT / "recipes" / f"{recipe_name}.yaml"
    cfg = TrainConfig.from_sources(recipe)
    data = RECIPES.get(recipe_name) or cfg.data
    name = register_subset(data, cfg.task, fraction, seed)
    train_split = load_dataset(name, "train", seed=cfg.seed, task=cfg.task, **cfg.data_options())
    n_train = len(train_split)
    print(f"{recipe_name}: {cfg.task}, {data} -> {name} ({n_train} training images)", flush=True)
    row = {"recipe": recipe_name, "task": cfg.task, "metric": task_class(cfg.task).score_label,
           "model": cfg.model, "n_train": n_train}
    probe = train_split if cfg.task == "classify" else None
    row["recipe_run"] = train(f"recipe ({cfg.model})", probe, config=str(recipe), overrides=[f"data={name}"])
    default = TrainConfig()
    split = {k: v for k, v in cfg.data_options().items() if k == "val_fraction"}  # the same train/val split
    batch = min(default.batch_size, n_train)
    row["default_model"] = default.model
    row["default_run"] = train(f"default ({default.model}{', batch ' + str(batch) if batch != default.batch_size else ''})",
                               probe, task=cfg.task, data=name, batch_size=batch, **split)
    return row


def _cell(run: dict, key: str, fmt: str) -> str:
    if "error" in run:
        return run["error"] if key == "score" else "-"
    value = run.get(key)
    return "-" if value is None else format(value, fmt)


def table(rows: list[dict]) -> str:
    lines = ["| recipe | task, score | train images | recipe model | recipe score | recipe train s | "
             "recipe gap | default model | default score | default train s | default gap |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["recipe_run"], r["default_run"]
        lines.append(f"| {r['recipe']} | {r['task']}, {r['metric']} ({a.get('split', '-')}) | {r['n_train']:,} | "
                     f"{r['model']} | {_cell(a, 'score', '.4f')} | {_cell(a, 'train_s', '.0f')} | "
                     f"{_cell(a, 'gap', '+.4f')} | {r['default_model']} | {_cell(b, 'score', '.4f')} | "
                     f"{_cell(b, 'train_s', '.0f')} | {_cell(b, 'gap', '+.4f')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES), metavar="NAME",
                   help=f"which recipes (default: all: {', '.join(RECIPES)})")
    p.add_argument("--fraction", type=float, default=0.1, help="share of each split kept (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="which subset (default 0)")
    a = p.parse_args(argv)
    if not 0 < a.fraction <= 1:
        p.error("--fraction must be in (0, 1]")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.processor() or platform.machine()}; {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"with {torch.get_num_threads()} threads; load average {load:.2f}", flush=True)
    rows = []
    for name in a.recipes:
        rows.append(bench(name, a.fraction, a.seed))
    print()
    print(f"Recipes on {a.fraction:.0%} subsets (seed {a.seed}) against the task's default model")
    print(table(rows))
    if hasattr(os, "getloadavg"):
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
