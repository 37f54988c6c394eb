"""Dataset registry: built-in sets by name, real formats by path.

    @register_dataset("digits", description="...")
    def digits(split: str, seed: int = 0, **opts) -> TensorImages: ...

    train = load_dataset("digits", "train")
    test = load_dataset("../shared/data/cifar10", "test")
    scenes = load_dataset("shapes", "val", task="segment")   # one name, one builder per task

A name may be registered once per task. A path is read by the loader registered for the
task (``register_path_loader``); classification's is ``cnnlab.data.paths.load_path``.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cnnlab.errors import CnnlabError, unknown_name

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    builder: Callable[..., object]
    description: str = ""
    tasks: tuple[str, ...] = ("classify",)


_DATASETS: dict[tuple[str, str], DatasetInfo] = {}    # (name, task) -> builder
_PATH_LOADERS: dict[str, Callable[..., object]] = {}  # task -> fn(path, split, seed=0, **opts)


def register_dataset(name: str, *, description: str = "", tasks: tuple[str, ...] = ("classify",)):
    """Decorator that registers a dataset builder ``fn(split, seed=0, **opts)`` for ``tasks``."""

    def wrap(fn):
        for task in tasks:
            if (name, task) in _DATASETS:
                raise ValueError(f"dataset {name!r} is registered twice for task {task!r}")
            _DATASETS[name, task] = DatasetInfo(name, fn, description, tuple(tasks))
        return fn

    return wrap


def register_path_loader(task: str):
    """Decorator that registers how a dataset on disk is read for ``task``."""

    def wrap(fn):
        if task in _PATH_LOADERS:
            raise ValueError(f"a path loader for task {task!r} is registered twice")
        _PATH_LOADERS[task] = fn
        return fn

    return wrap


def list_datasets(task: str | None = None) -> list[str]:
    """Names of the built-in datasets (for ``task``, or for any task)."""
    _load_builtin()
    return sorted({name for name, t in _DATASETS if task in (None, t)})


def dataset_info(name: str, task: str = "classify") -> DatasetInfo:
    _load_builtin()
    if (name, task) not in _DATASETS:
        raise unknown_name(f"{task} dataset", name, list_datasets(task))
    return _DATASETS[name, task]


def load_dataset(spec: str | Path, split: str = "train", *, seed: int = 0, task: str = "classify", **opts):
    """Load split ``split`` of a registered dataset name or of a dataset on disk, for ``task``.

    ``opts`` go to the builder: ``skip_bad`` (leave unreadable files out and count them),
    ``download`` (torchvision downloaders, needs internet), ``val_fraction`` (carve a
    validation split from train when the data has none), ``image_size``.
    """
    if split not in SPLITS:
        raise CnnlabError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    _load_builtin()
    key = str(spec)
    if (key, task) in _DATASETS:
        info = _DATASETS[key, task]
        return info.builder(split, seed=seed, **_builtin_options(info, task, opts))
    named, colon, root = key.partition(":")  # NAME:PATH, e.g. camvid:../shared/data/camvid
    if colon and (named, task) in _DATASETS and root:
        return _DATASETS[named, task].builder(split, seed=seed, root=root, **opts)
    if any(name == key for name, _ in _DATASETS):
        tasks = sorted(t for name, t in _DATASETS if name == key)
        raise CnnlabError(f"--data {key!r} has no {task!r} variant; it serves --task {', '.join(tasks)}")
    path = Path(key).expanduser()
    if path.exists():
        if task not in _PATH_LOADERS:
            raise CnnlabError(f"--data {key}: no dataset layout on disk is known for --task {task}")
        return _PATH_LOADERS[task](path, split, seed=seed, **opts)
    error = unknown_name(f"{task} dataset", key, list_datasets(task))
    raise CnnlabError(f"--data {key!r}: no such file or folder, and {error}")


def check_image_size(dataset: str, image_size, low: int) -> None:
    """A generated dataset's ``image_size``: a whole number of pixels, at least ``low``."""
    if not isinstance(image_size, int) or isinstance(image_size, bool) or not low <= image_size <= 4096:
        raise CnnlabError(f"{dataset}: image_size must be a whole number of pixels in {low}..4096, "
                          f"got {image_size!r}")


MOOT = ("skip_bad", "download")  # file options: built-in data has nothing to skip or download


def _builtin_options(info: DatasetInfo, task: str, opts: dict) -> dict:
    """``opts`` less the moot file options, checked against the builder's keyword-only options."""
    params = inspect.signature(info.builder).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return opts
    opts = {k: v for k, v in opts.items() if k not in MOOT}
    takes = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(opts) - set(takes))
    if unknown:
        raise CnnlabError(f"dataset {info.name!r} ({task}) takes {'only ' + ', '.join(takes) if takes else 'no options'}"
                          f", got {', '.join(unknown)}")
    return opts


def _load_builtin() -> None:
    from cnnlab import data  # noqa: F401  (importing the package registers the built-ins)
