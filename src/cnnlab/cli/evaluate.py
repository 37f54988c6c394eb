"""``cnnlab eval``: score a checkpoint on a dataset split, with the task's figures."""
from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab.cli.common import check_task, json_text


def add(sub) -> argparse.ArgumentParser:
    e = sub.add_parser("eval", help="evaluate a checkpoint: top-1/top-5, per-class, confusion matrix")
    e.add_argument("checkpoint")
    e.add_argument("--data", help="dataset name or path (default: the training data)")
    e.add_argument("--images", metavar="DIR", help="the folder of the images a COCO-style --data file names "
                   "(default: the training run's, for its own data)")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--device", default="auto")
    e.add_argument("--json", action="store_true")
    e.add_argument("--full", action="store_true", help="with --json: include per-class and confusion matrix")
    e.add_argument("--task", help="the checkpoint's task (checked; the checkpoint knows it)")
    e.add_argument("--tta", type=int, default=0, choices=[0, 1, 2],
                   help="test-time augmentation: 1 averages each image with its mirror image, 2 also with "
                   "1-pixel shifts (classify, as airbench) or 0.75x and 1.25x zooms (segment); only views "
                   "the model trained with (flip, translate, scale) are used")
    e.add_argument("--plots", metavar="DIR", help="folder for the task's evaluation figures "
                   "(default: eval-SPLIT beside the checkpoint)")
    e.add_argument("--no-plots", action="store_true", help="write no figures")
    return e


def run(a) -> int:
    from cnnlab import api

    lm = check_task(api.load(a.checkpoint, device=a.device), a.task)
    plots = None if a.no_plots else (a.plots or Path(a.checkpoint).parent / f"eval-{a.split}")
    m = api.evaluate(lm, data=a.data, split=a.split, device=a.device, tta=a.tta, plots=plots, images=a.images)
    if a.json:
        print(json_text(lm.task.metrics_json(m, full=a.full)))
        return 0
    print(lm.task.format_metrics(m))
    if m.get("plots"):
        print(f"plots: {', '.join(m['plots'])}")
    return 0
