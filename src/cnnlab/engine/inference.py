"""A model ready to predict: from a checkpoint, or a registered model with ImageNet weights."""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from cnnlab.engine.checkpoint import load_checkpoint
from cnnlab.engine.config import TrainConfig
from cnnlab.runtime.device import autocast, pick_device
from cnnlab.errors import CnnlabError, clean
from cnnlab.images import as_image, read_image, resize
from cnnlab.memory import available, check_classes, footprint, gb, largest_side, require
from cnnlab.models import model_info
from cnnlab.tasks.base import task_class


@dataclass
class LoadedModel:
    """A model in eval mode with the task that knows its classes and input format."""

    model: nn.Module
    task: object
    device: torch.device
    name: str
    config: TrainConfig | None = None
    source: str = ""
    runtime = "pytorch"  # what runs it (OnnxModel: onnxruntime)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> "LoadedModel":
        dev = pick_device(device)
        state = load_checkpoint(path, dev)
        cfg = TrainConfig.from_dict(state["config"])
        task = checked_task(state["task"], path)
        model = bounded_model(task, TrainConfig.from_dict({**state["config"], "pretrained": False}), path, dev)
        load_weights_checked(model, state["model"], path, cfg.model)
        return cls(model.to(dev).eval(), task, dev, cfg.model, cfg, str(path))

    @classmethod
    def from_safetensors(cls, path: str | Path, device: str = "auto") -> "LoadedModel":
        """A model exported with ``--format safetensors`` (weights, config and task inside)."""
        from cnnlab.engine.weights_file import load_weights

        dev = pick_device(device)
        model, task, cfg = load_weights(path, dev)
        return cls(model, task, dev, cfg.model, cfg, str(path))

    @classmethod
    def from_pretrained(cls, name: str, device: str = "auto") -> "LoadedModel":
        """A registered model with its ImageNet weights and class names."""
        from cnnlab.tasks.classify import ClassifyTask

        info = model_info(name)
        if not info.pretrained:
            raise CnnlabError(f"--pretrained: model {name!r} has no pretrained weights")
        dev = pick_device(device)
        classes = imagenet_classes()
        task = ClassifyTask(classes, list(info.mean), list(info.std), info.input_size)
        cfg = TrainConfig(model=name, pretrained=True, data="imagenet")
        model = task.build_model(cfg)
        return cls(model.to(dev).eval(), task, dev, name, cfg, f"{name} (pretrained)")

    def read(self, image: str | Path | Tensor) -> Tensor:
        """An image file (or a uint8 (C, H, W) tensor) as the uint8 (C, H, W) tensor this model takes."""
        return model_input(self.task, image)

    @torch.no_grad()
    def logits(self, images: Tensor, amp: bool = False) -> Tensor:
        """uint8 (B, C, H, W) -> float logits (B, K); fp32 unless ``amp`` (bf16 can flip near-ties)."""
        with autocast(self.device, amp):
            return self.task.logits(self.model, images.to(self.device))


# ---------------------------------------------------------------------------------------------
# what a checkpoint or an export may ask for: checked before anything is built
# ---------------------------------------------------------------------------------------------

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


def model_input(task, image: str | Path | Tensor) -> Tensor:
    """The one preprocessing of predict, explain and the service, for PyTorch and ONNX models alike:
    an image file or uint8 (C, H, W) tensor, in the task's channels, resized to its input size."""
    c, h, w = task.input_shape
    return resize(as_image(image, c) if isinstance(image, Tensor) else read_image(image, channels=c), (h, w))


def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet class names, from torchvision's weight metadata (no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
