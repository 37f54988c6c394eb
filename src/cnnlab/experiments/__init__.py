"""The lecture's arguments as experiments: each trains, measures, and writes a table and a figure.

    from cnnlab.experiments import run_experiment
    result = run_experiment("fc-vs-cnn", data="digits")   # rows, files (json, markdown, figure)

``fc-vs-cnn``: an MLP against the lecture's CNN (parameters, shifts, permuted pixels);
``pooling``: max/avg pooling, strided convolution, no downsampling (compute, invariance);
``faces``: a face / non-face CNN on LFW crops, slid over an image pyramid to find faces.
"""
from __future__ import annotations

import importlib
import inspect

from cnnlab.errors import CnnlabError, unknown_name

# experiment name -> "module:function", imported on first use
EXPERIMENTS = {
    "fc-vs-cnn": "cnnlab.experiments.fc_vs_cnn:run",
    "pooling": "cnnlab.experiments.pooling:run",
    "faces": "cnnlab.experiments.faces:run",
}


def experiment_names() -> list[str]:
    """The experiments' names, in the order they are listed (``cnnlab experiment --help``)."""
    return list(EXPERIMENTS)


MINIMUM = {"epochs": 1, "train_size": 1, "seed": 0, "batch_size": 1}  # the smallest value of whole-number options


def run_experiment(name: str, **options) -> dict:
    """Run experiment ``name`` with ``options`` (its keyword arguments; None means its default)."""
    if name not in EXPERIMENTS:
        raise unknown_name("experiment", name, EXPERIMENTS)
    module, fn = EXPERIMENTS[name].split(":")
    run = getattr(importlib.import_module(module), fn)
    accepted = inspect.signature(run).parameters
    options = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        takes = ", ".join(k for k in accepted if k != "log")
        raise CnnlabError(f"experiment {name!r} has no option {', '.join(unknown)}; it takes {takes}")
    for key, low in MINIMUM.items():
        if key in options and not (isinstance(options[key], int) and options[key] >= low):
            raise CnnlabError(f"experiment {name!r}: --{key.replace('_', '-')} {options[key]}: expected a whole "
                              f"number of at least {low}")
    return run(**options)
