"""Dataset registry: built-in sets by name, real formats by path.

    @register_dataset("digits", description="...")
    def digits(split: str, seed: int = 0, **opts) -> TensorImages: ...

    train = load_dataset("digits", "train")
    test = load_dataset("../shared/data/cifar10", "test")
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cnnlab.errors import CnnlabError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    builder: Callable[..., object]
    description: str = ""
    tasks: tuple[str, ...] = ("classify",)


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(name: str, *, description: str = "", tasks: tuple[str, ...] = ("classify",)):
    """Decorator that registers a dataset builder ``fn(split, seed=0, **opts)``."""

    def wrap(fn):
        if name in _DATASETS:
            raise ValueError(f"dataset {name!r} is registered twice")
        _DATASETS[name] = DatasetInfo(name, fn, description, tuple(tasks))
        return fn

    return wrap


def list_datasets() -> list[str]:
    _load_builtin()
    return sorted(_DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    _load_builtin()
    return _DATASETS[name]


def load_dataset(spec: str | Path, split: str = "train", *, seed: int = 0, **opts):
    """Load split ``split`` of a registered dataset name or of a dataset on disk.

    ``opts`` go to the builder: ``skip_bad`` (leave unreadable files out and count them),
    ``download`` (torchvision downloaders, needs internet), ``val_fraction`` (carve a
    validation split from train when the data has none), ``image_size``.
    """
    if split not in SPLITS:
        raise CnnlabError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    _load_builtin()
    key = str(spec)
    if key in _DATASETS:
        return _DATASETS[key].builder(split, seed=seed, **opts)
    path = Path(key).expanduser()
    if path.exists():
        from cnnlab.data.paths import load_path

        return load_path(path, split, seed=seed, **opts)
    known = ", ".join(sorted(_DATASETS))
    raise CnnlabError(f"--data {key!r}: not a built-in dataset ({known}) and no such file or folder")


def _load_builtin() -> None:
    from cnnlab import data  # noqa: F401  (importing the package registers the built-ins)
