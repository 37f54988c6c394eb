"""A model ready to predict: from a checkpoint, or a registered model with ImageNet weights."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from cnnlab.engine.checkpoint import load_checkpoint
from cnnlab.engine.config import TrainConfig
from cnnlab.runtime.device import autocast, pick_device
from cnnlab.errors import CnnlabError
from cnnlab.images import as_image, read_image, resize
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
        task = task_class(state["task"]["name"]).from_state(state["task"])
        model = task.build_model(TrainConfig.from_dict({**state["config"], "pretrained": False}))
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise CnnlabError(f"{path}: weights do not fit model {cfg.model!r} ({str(e).splitlines()[0]})") from None
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


def model_input(task, image: str | Path | Tensor) -> Tensor:
    """The one preprocessing of predict, explain and the service, for PyTorch and ONNX models alike:
    an image file or uint8 (C, H, W) tensor, in the task's channels, resized to its input size."""
    c, h, w = task.input_shape
    return resize(as_image(image, c) if isinstance(image, Tensor) else read_image(image, channels=c), (h, w))


def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet class names, from torchvision's weight metadata (no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
