"""``cnnlab train``: train a model; every option is a config key (``TrainConfig`` or the task's config)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cnnlab.cli.common import json_text
from cnnlab.cli.options import add_config_options
from cnnlab.engine.config import config_keys


def add(sub) -> argparse.ArgumentParser:
    t = sub.add_parser("train", help="train a model (the task read from the data unless --task says it)",
                       description="Train a model. Each option is a config key (a recipe's YAML key, "
                       "--set KEY=VALUE); values: defaults < --config < --set < options.",
                       epilog="example: cnnlab train --config fashion-mnist --epochs 4 --out runs/fm")
    t.add_argument("--config", metavar="RECIPE|FILE", help="a packaged recipe's name (`cnnlab recipes`: "
                   "fashion-mnist, cifar10, ...) or a YAML file of config keys; options given here override it")
    t.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config keys")
    t.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its last.pt")
    t.add_argument("--json", action="store_true", help="print the result as JSON")
    t.add_argument("--quiet", "-q", action="store_true", help="no progress lines: only the result")
    add_config_options(t)
    return t


def run(a) -> int:
    from cnnlab import api

    options = {name: getattr(a, name) for name in config_keys()}
    log = None if a.quiet else (lambda *args: print(*args, file=sys.stderr)) if a.json else print  # stdout: JSON
    result = api.train(config=a.config, overrides=a.set, resume=a.resume, log=log, **options)
    if result.interrupted:
        return 130
    if os.environ.get("RANK", "0") != "0":  # under torchrun the run is reported once, by rank 0
        return 0
    task = result.task
    if a.json:
        print(json_text({"out": str(result.out), "best_val": result.best,
                         "test": task.metrics_json(result.test) if result.test else None,
                         "train_eval": result.train_eval, "skipped": result.skipped,
                         "seconds": round(result.seconds, 1), "plots": result.plots}))
        return 0
    if result.test:
        print(f"test {task.headline(result.test)}  ({result.test['count']} images)")
    if result.best:
        print(f"best val {task.score_label} {result.best['score']:.4f} at epoch {result.best['epoch']}; "
              f"{result.seconds:.1f} s")
    files = ["best.pt", "last.pt", "metrics.csv", "metrics.json"] + [Path(p).name for p in result.plots]
    print(f"run folder: {result.out}  ({', '.join(files)})")
    return 0
