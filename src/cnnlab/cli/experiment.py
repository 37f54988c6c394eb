"""``cnnlab experiment NAME``: one of the lecture's arguments measured (the names from ``cnnlab.experiments``)."""
from __future__ import annotations

import argparse
import sys

from cnnlab.cli.common import json_text
from cnnlab.experiments import experiment_names


def add(sub) -> argparse.ArgumentParser:
    xp = sub.add_parser("experiment", help=f"the lecture's arguments measured: {', '.join(experiment_names())} "
                        "(a table and a figure)")
    xp.add_argument("name", choices=experiment_names())
    xp.add_argument("--data", help="dataset name or path (fc-vs-cnn, pooling; default digits)")
    xp.add_argument("--out", help="folder for the table and figure (default runs/experiments/NAME)")
    xp.add_argument("--epochs", type=int, help="training epochs of every model (default: the experiment's)")
    xp.add_argument("--train-size", type=int, help="cap on training images (fc-vs-cnn, pooling; default 12000)")
    xp.add_argument("--seed", type=int, help="seeds weights, sampling, splits and the permutation (default 0)")
    xp.add_argument("--json", action="store_true", help="print the rows and files as JSON")
    return xp


def run(a) -> int:
    from cnnlab import api

    log = (lambda *args: print(*args, file=sys.stderr)) if a.json else print  # keep stdout pure JSON
    r = api.experiment(a.name, log=log, data=a.data, out=a.out, epochs=a.epochs, seed=a.seed,
                       train_size=a.train_size)
    if a.json:
        print(json_text({k: r[k] for k in ("name", "rows", "files", "notes")}, default=str))
        return 0
    print()
    print(r["files"]["table"])
    for note in r["notes"]:
        print(f"- {note}")
    print(f"wrote {r['files']['markdown']}, {r['files']['json']}, {r['files']['figure']}")
    return 0
