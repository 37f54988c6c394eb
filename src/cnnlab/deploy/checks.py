"""What a checkpoint or an export may ask for, checked before anything is built: the task's
sizes, names and normalisation, and weights that fit the model and hold only finite numbers.

    task = checked_task(state["task"], "runs/digits/best.pt")
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from cnnlab.errors import CnnlabError, clean
from cnnlab.memory import check_classes
from cnnlab.tasks.base import task_class

MAX_SIDE = 8192  # pixels: an input side a checkpoint may declare (training's --image-size stops at 4096)


def checked_task(state, source) -> object:
    """The task a checkpoint's (or an export's) ``task`` state describes, its sizes and numbers
    checked first: input_shape [C, H, W] with C 1, 3 or 4 and sides up to ``MAX_SIDE``, at most
    ``MAX_CLASSES`` names, finite means and positive finite standard deviations."""
    source = clean(source)
    if not isinstance(state, dict) or not isinstance(state.get("name"), str):
        raise CnnlabError(f"{source}: the task state is damaged (expected a dict with a 'name')")
    shape = state.get("input_shape")
    if not (isinstance(shape, (list, tuple)) and len(shape) == 3 and all(_is_int(v) for v in shape)
            and shape[0] in (1, 3, 4) and all(1 <= v <= MAX_SIDE for v in shape[1:])):
        raise CnnlabError(f"{source}: input_shape {clean(repr(shape))[:80]}: expected [C, H, W] with C 1, 3 "
                          f"or 4 and H, W in 1..{MAX_SIDE}")
    for key in ("classes", "words", "vocab"):
        names = state.get(key)
        if names is not None:
            if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
                raise CnnlabError(f"{source}: {key}: expected a list of names")
            check_classes(len(names), f"{source}: {key}")
    for key, positive in (("mean", False), ("std", True)):
        if key in state:
            _check_numbers(state[key], shape[0], positive, f"{source}: {key}")
    norm = state.get("normalization")
    if isinstance(norm, dict):
        for key, positive in (("image_mean", False), ("image_std", True)):
            if key in norm:
                _check_numbers(norm[key], len(norm[key]) if isinstance(norm[key], list) else 0, positive,
                               f"{source}: normalization.{key}")
    try:
        return task_class(state["name"]).from_state(state)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise CnnlabError(f"{source}: the {clean(state['name'])} task state is damaged "
                          f"({type(e).__name__}: {clean(e)[:120]})") from None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_numbers(values, count: int, positive: bool, what: str) -> None:
    if not (isinstance(values, (list, tuple)) and len(values) == count and count > 0
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
        raise CnnlabError(f"{what}: expected {count} numbers, one per input channel, got {clean(repr(values))[:80]}")
    bad = [v for v in values if not math.isfinite(v) or (positive and v <= 0)]
    if bad:
        raise CnnlabError(f"{what}: {bad[0]} is not {'a positive' if positive else 'a finite'} number "
                          f"(the checkpoint would predict NaN for every image)")


def load_weights_checked(model: nn.Module, weights: dict, source, name: str) -> None:
    """``model.load_state_dict(weights)``; weights that do not fit, or hold NaN or infinity, are refused."""
    for key, value in weights.items():
        if isinstance(value, Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CnnlabError(f"{clean(source)}: weight {clean(key)} holds NaN or infinite values (the training "
                              f"diverged); the model would predict NaN")
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise CnnlabError(f"{clean(source)}: weights do not fit model {name!r} ({clean(str(e).splitlines()[0])[:200]})") from None
