"""The eager PyTorch Predictor: a model from a checkpoint (``.pt``), an exported ``.safetensors``,
or a registered model with its ImageNet weights.

    lm = LoadedModel.from_checkpoint("runs/digits/best.pt")
    probs = lm.logits(lm.read("7.png")[None]).softmax(1)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from cnnlab.deploy.checks import checked_task, load_weights_checked
from cnnlab.deploy.predictor import model_input
from cnnlab.deploy.weights_file import load_weights
from cnnlab.engine.checkpoint import load_checkpoint
from cnnlab.engine.config import TrainConfig
from cnnlab.engine.memory_budget import bounded_model
from cnnlab.errors import CnnlabError
from cnnlab.models import model_info
from cnnlab.runtime.device import autocast, pick_device


@dataclass
class LoadedModel:
    """A model in eval mode with the task that knows its classes and input format (a ``Predictor``)."""

    model: nn.Module
    task: object
    device: torch.device
    name: str
    config: TrainConfig | None = None
    source: str = ""
    runtime = "pytorch"  # what runs it (OnnxModel: onnxruntime)
    exportable = True    # the module is here: export, evaluate and the explainer run it
    evaluable = True

    @property
    def explainable(self) -> bool:
        """A classifier: explain and inspect hook its layers."""
        return self.task.explainable

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


def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet class names, from torchvision's weight metadata (no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
