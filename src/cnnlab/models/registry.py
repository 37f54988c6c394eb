"""Model registry, after torchvision's ``models/_api.py``.

    @register_model("lenet5", input_size=(1, 32, 32), paper="LeCun et al. 1998")
    def lenet5(num_classes=10, in_channels=1, **kwargs): ...

    model = get_model("lenet5", num_classes=10)
"""
from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from cnnlab.errors import CnnlabError, unknown_name


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model before building it."""

    name: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int, int]  # (C, H, W) of the configuration the paper used
    paper: str = ""
    task: str = "classify"
    pretrained: bool = False  # ImageNet weights: packaged offline, or torchvision's from the torch hub cache
    # Per-channel mean/std on the 0..1 scale that pretrained weights expect (None: use the data's).
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    head: str = ""  # classifiers: the dotted name of the classifier head module (``fc``, ``net._fc``)


_MODELS: dict[str, ModelInfo] = {}


def register_model(name: str, *, input_size: tuple[int, int, int] = (3, 224, 224), paper: str = "",
                   task: str = "classify", pretrained: bool = False,
                   mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                   tags: tuple[str, ...] = (), head: str = ""):
    """Decorator that registers a model builder under ``name``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        if task == "classify" and not head:
            raise ValueError(f"classifier {name!r} must name its head (register_model(..., head=...))")
        _MODELS[name] = ModelInfo(name, fn, tuple(input_size), paper, task, pretrained, mean, std, tuple(tags), head)
        return fn

    return wrap


def model_info(name: str) -> ModelInfo:
    """The registry entry for ``name``; a clear error lists the known names."""
    if not isinstance(name, str) or not name:
        raise (TypeError if not isinstance(name, str) else CnnlabError)(
            f"name: expected a model name (str; cnnlab.list_models()), got {name!r}"[:200])
    _load_builtin()
    if name not in _MODELS:
        raise unknown_name("model", name, _MODELS)
    return _MODELS[name]


def get_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name`` (kwargs go to its builder, e.g. ``num_classes``)."""
    builder = model_info(name).builder
    try:
        inspect.signature(builder).bind(**kwargs)
        return builder(**kwargs)
    except TypeError as e:  # an unknown or mistyped model_args key: name it, not a traceback
        if "argument" not in str(e):
            raise
        raise CnnlabError(f"model {name!r}: {e} (model_args go to its builder)") from None


def list_models(pattern: str = "*", task: str | None = None) -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (and ``task``), sorted."""
    pattern = "*" if pattern is None else pattern
    if not isinstance(pattern, str):
        raise TypeError(f"pattern: expected a shell-style pattern (str) such as 'resnet*', got {type(pattern).__name__}")
    _load_builtin()
    return sorted(n for n, i in _MODELS.items()
                  if fnmatch.fnmatch(n, pattern) and (task is None or i.task == task))


def _load_builtin() -> None:
    # Importing the package registers every built-in architecture.
    from cnnlab import models  # noqa: F401
