"""Memory budgets: a model and its batch counted on the meta device, and refused with the figures
and the fix, before anything is built (training here; loading in ``cnnlab.deploy`` too).

    model = bounded_model(task, cfg, "train", device, batch=cfg.batch_size, training=True)
"""
from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from cnnlab.engine.config import TrainConfig
from cnnlab.errors import clean
from cnnlab.memory import available, footprint, gb, largest_side, require
from cnnlab.models import model_info


def bounded_model(task, cfg: TrainConfig, source, device: torch.device, *, batch: int = 1,
                  training: bool = False) -> nn.Module:
    """``task.build_model(cfg)``, once the memory it needs was counted on the meta device and found
    to fit: the weights and one image's activations to predict or, ``training``, also gradients,
    optimizer moments and a ``batch``'s activations."""
    what = f"{clean(source)}: model {cfg.model!r}" + (f" with model_args {cfg.model_args}" if cfg.model_args else "")
    probe = copy.copy(task)  # a task may keep what its first build decides (detection's input scale): not this one's
    need = footprint(lambda: probe.build_model(dataclasses.replace(cfg, pretrained=False)), task.input_shape, what)
    if training:
        require_training(need, cfg, task.input_shape, device)
    else:
        c, h, w = task.input_shape
        require(need.inference(batch), f"{what} ({need.parameters:,} parameters, input {c}x{h}x{w})", "", device)
    return task.build_model(cfg)


def check_training_size(cfg: TrainConfig, device: torch.device) -> None:
    """Before any data is read or decoded: a run at ``--image-size`` whose batch cannot fit is
    refused. The model is counted as a 3-channel classifier of that size (the data decides the
    real channels and classes; ``bounded_model`` checks again once it has), so only the models
    that build without the data (classifiers, segmenters) are checked this early."""
    from cnnlab.models import get_model

    if not cfg.image_size or model_info(cfg.model).task not in ("classify", "segment"):
        return
    shape = (3, cfg.image_size, cfg.image_size)
    what = f"model {cfg.model!r}" + (f" with model_args {cfg.model_args}" if cfg.model_args else "")
    need = footprint(lambda: get_model(cfg.model, num_classes=2, in_channels=3, **cfg.model_args), shape, what)
    require_training(need, cfg, shape, device)


def require_training(need, cfg: TrainConfig, shape, device) -> None:
    """A training step's memory (weights, gradients, optimizer moments, a batch's activations)
    against what the device has, refused with the largest image size or batch that fits."""
    states = 1 if cfg.optimizer == "sgd" else 2  # SGD: momentum; AdamW: two moments
    c, h, w = shape
    action = (f"training {cfg.model} ({need.parameters:,} parameters) on {c}x{h}x{w} images, "
              f"batch {cfg.batch_size},")
    total = need.training(cfg.batch_size, states)
    if total <= available(device):
        return
    fixed = need.weight_bytes + need.trainable_bytes * (1 + states)
    room = available(device)
    per_image = need.input_bytes + need.activation_bytes
    options = []
    if room > fixed:
        fits = largest_side(max(h, w), cfg.batch_size * per_image, fixed, room)
        if fits >= 8:
            options.append(f"--image-size <= {fits}")
        if (room - fixed) // per_image >= 1:
            options.append(f"--batch-size <= {int((room - fixed) // per_image)}")
    advice = ("use " + " or ".join(options) if options else
              f"the model alone takes {gb(fixed)} to train: choose a smaller model or smaller model_args")
    require(total, action, advice, device)
