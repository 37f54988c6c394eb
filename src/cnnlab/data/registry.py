"""Dataset registry: built-in sets by name, real formats by path.

    @register_dataset("digits", description="...")
    def digits(split: str, seed: int = 0, **opts) -> TensorImages: ...

    train = load_dataset("digits", "train")
    test = load_dataset("../shared/data/cifar10", "test")
    scenes = load_dataset("shapes", "val", task="segment")   # one name, one builder per task

    boxes = load_dataset("coco:ann/instances_train.json", "train", task="detect", images="train2017")

A name may be registered once per task. A path is read by the loader registered for the
task (``register_path_loader``); classification's is ``cnnlab.data.formats.classification.load_path``.
``NAME:PATH`` reads PATH with a built-in name's builder (``camvid:../camvid``); ``FORMAT:PATH``
makes a path loader read PATH as that format (``coco:FILE``, ``voc:DIR``, ``yolo:data.yaml``;
the formats a loader declares). ``images`` (``--images DIR``): the folder of the images an
annotation file names, for the loaders that take it (COCO-style annotations); others refuse it.
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
_FORMATS: dict[str, tuple[str, ...]] = {}             # task -> format prefixes its loader reads (format=)


def register_dataset(name: str, *, description: str = "", tasks: tuple[str, ...] = ("classify",)):
    """Decorator that registers a dataset builder ``fn(split, seed=0, **opts)`` for ``tasks``."""

    def wrap(fn):
        for task in tasks:
            if (name, task) in _DATASETS:
                raise ValueError(f"dataset {name!r} is registered twice for task {task!r}")
            _DATASETS[name, task] = DatasetInfo(name, fn, description, tuple(tasks))
        return fn

    return wrap


def register_path_loader(task: str, formats: tuple[str, ...] = ()):
    """Decorator that registers how a dataset on disk is read for ``task``.

    ``formats``: prefixes that force one reader (``coco:FILE``); the loader gets ``format=NAME``.
    """

    def wrap(fn):
        if task in _PATH_LOADERS:
            raise ValueError(f"a path loader for task {task!r} is registered twice")
        _PATH_LOADERS[task] = fn
        _FORMATS[task] = tuple(formats)
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
    validation split from train when the data has none), ``image_size``, ``images`` (the
    image folder of an annotation file: COCO-style detection and captions).
    """
    if split not in SPLITS:
        raise CnnlabError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not isinstance(spec, (str, Path)) or not str(spec).strip():
        raise (TypeError if not isinstance(spec, (str, Path)) else CnnlabError)(
            f"spec: expected a dataset name or path (str or Path), got {type(spec).__name__} {str(spec)[:40]!r}")
    _load_builtin()
    key = str(spec)
    if not opts.get("images"):
        opts.pop("images", None)  # "" / None: not given
    if (key, task) in _DATASETS:
        info = _DATASETS[key, task]
        _refuse_images(opts, task, f"{key} is a built-in dataset")
        return info.builder(split, seed=seed, **_builtin_options(info, task, opts))
    named, colon, root = key.partition(":")  # NAME:PATH, e.g. camvid:../shared/data/camvid
    if colon and (named, task) in _DATASETS and root:
        _refuse_images(opts, task, f"{named} is a built-in dataset")
        return _DATASETS[named, task].builder(split, seed=seed, root=root, **opts)
    if colon and named in _FORMATS.get(task, ()):  # FORMAT:PATH, e.g. coco:annotations/instances.json
        path = Path(root).expanduser()
        if not root or not path.exists():
            raise CnnlabError(f"--data {key}: no such file or folder {root!r}; expected {named}:PATH")
        return _PATH_LOADERS[task](path, split, seed=seed, format=named, **_path_options(task, opts))
    if colon and any(named in formats for formats in _FORMATS.values()) and not Path(key).exists():
        tasks = sorted(t for t, formats in _FORMATS.items() if named in formats)
        raise CnnlabError(f"--data {key}: the prefix {named}: is read for --task {', '.join(tasks)}; "
                          f"for --task {task} give the path itself")
    if any(name == key for name, _ in _DATASETS):
        tasks = sorted(t for name, t in _DATASETS if name == key)
        raise CnnlabError(f"--data {key!r} has no {task!r} variant; it serves --task {', '.join(tasks)}")
    path = Path(key).expanduser()
    if path.exists():
        if task not in _PATH_LOADERS:
            raise CnnlabError(f"--data {key}: no dataset layout on disk is known for --task {task}")
        return _PATH_LOADERS[task](path, split, seed=seed, **_path_options(task, opts))
    error = unknown_name(f"{task} dataset", key, list_datasets(task))
    raise CnnlabError(f"--data {key!r}: no such file or folder, and {error}")


def _takes_images(fn) -> bool:
    return "images" in inspect.signature(fn).parameters


def _refuse_images(opts: dict, task: str, why: str) -> None:
    """``--images`` given where nothing reads it: one line saying which data it is for."""
    if "images" in opts:
        takers = sorted(t for t, fn in _PATH_LOADERS.items() if _takes_images(fn))
        raise CnnlabError(f"--images is for COCO-style annotations (--task {', '.join(takers)}); {why}, "
                          f"whose images come with it")


def _path_options(task: str, opts: dict) -> dict:
    """``opts`` for the path loader of ``task``: ``images`` checked (taken, and a folder)."""
    if "images" not in opts:
        return opts
    if not _takes_images(_PATH_LOADERS[task]):
        _refuse_images(opts, task, f"--task {task} reads its images from the --data folder")
    images = Path(opts["images"]).expanduser()
    if not images.is_dir():
        raise CnnlabError(f"--images {opts['images']}: no such folder; expected the folder holding the "
                          f"images that the --data annotations name")
    return {**opts, "images": images}


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


def builtin_tasks(name: str) -> list[str]:
    """The tasks a built-in dataset name serves (empty: not a built-in name)."""
    _load_builtin()
    return sorted(t for n, t in _DATASETS if n == name)


def format_task(prefix: str) -> str | None:
    """The task whose path loader reads the ``FORMAT:`` prefix ``prefix`` (``coco`` -> detect)."""
    _load_builtin()
    return next((t for t, formats in _FORMATS.items() if prefix in formats), None)
