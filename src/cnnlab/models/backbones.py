"""Classifier bodies as feature pyramids for dense prediction: the feature maps at strides 2..32.

    body = FeaturePyramid("resnet18", in_channels=3)
    feats = body(x)                 # {4: (B, 64, H/4, W/4), 8: ..., 16: ..., 32: (B, 512, H/32, W/32)}
    body.channels                   # {4: 64, 8: 128, 16: 256, 32: 512}

The registered classifiers are reused as they are: torchvision's ``IntermediateLayerGetter``
returns the outputs of the ResNet stages, of the VGG / lecture-CNN pooling layers; the
EfficientNet-Lite0 blocks are walked in order. For each stride the deepest map is kept.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn
from torchvision.models._utils import IntermediateLayerGetter

from cnnlab.errors import CnnlabError
from cnnlab.models.registry import get_model, model_info

BACKBONES = ("lecture_cnn", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "resnet18", "resnet34", "resnet50",
             "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
LECTURE_WIDTHS = (32, 64, 128, 256, 256)  # five conv-pool blocks: strides 2 to 32
PROBE_SIDE = 64  # pixels: a probe input finds the stride and width of each returned map


class _EfficientNetBody(nn.Module):
    """An EfficientNet-Lite's stem and MBConv blocks, returning every block's output."""

    def __init__(self, model: nn.Module):
        super().__init__()
        net = model.net
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out = OrderedDict(stem=self.stem(x))
        x = out["stem"]
        for i, block in enumerate(self.blocks):
            x = block(x)  # drop-connect off: no stochastic depth when fine-tuning
            out[f"block{i}"] = x
        return out


def _body(name: str, in_channels: int, pretrained: bool, **kwargs) -> nn.Module:
    """The classifier ``name`` cut below its head, returning named intermediate maps."""
    if name not in BACKBONES:
        raise CnnlabError(f"backbone {name!r}: expected one of {', '.join(BACKBONES)}")
    if name == "lecture_cnn":
        kwargs.setdefault("widths", LECTURE_WIDTHS)
    model = get_model(name, in_channels=in_channels, pretrained=pretrained, **kwargs)
    if name.startswith("resnet"):
        layers = {"relu": "stem", "layer1": "layer1", "layer2": "layer2", "layer3": "layer3", "layer4": "layer4"}
        return IntermediateLayerGetter(model, layers)
    if name.startswith("vgg"):
        pools = {n: f"pool{i}" for i, (n, m) in enumerate(
            (n, m) for n, m in model.features.named_children() if isinstance(m, nn.MaxPool2d))}
        return IntermediateLayerGetter(model.features, pools)
    if name == "lecture_cnn":
        return IntermediateLayerGetter(model.features, {n: n for n, _ in model.features.named_children()})
    return _EfficientNetBody(model)


class FeaturePyramid(nn.Module):
    """A backbone returning ``{stride: feature map}`` for strides 2, 4, ..., up to 32.

    freeze_stride: the layers whose outputs are at this stride or finer keep their (pretrained)
    weights; their backward pass, the costliest part of a light backbone at high resolution, is skipped.
    """

    def __init__(self, name: str, in_channels: int = 3, pretrained: bool = False, freeze_stride: int = 0,
                 **kwargs):
        super().__init__()
        self.name = name
        self.body = _body(name, in_channels, pretrained, **kwargs)
        self.keep, self.channels = self._probe(in_channels)  # layer name -> stride, stride -> width
        self.mean, self.std = model_info(name).mean, model_info(name).std
        if freeze_stride:
            self._freeze(in_channels, freeze_stride)

    @torch.no_grad()
    def _freeze(self, in_channels: int, stride: int) -> None:
        """requires_grad off for every layer whose output is at ``stride`` or finer."""
        fine = []

        def hook(module, inputs, output):
            if isinstance(output, Tensor) and output.dim() == 4 and PROBE_SIDE // output.shape[-1] <= stride:
                fine.append(module)
        leaves = [m for m in self.body.modules() if list(m.parameters(recurse=False))]
        handles = [m.register_forward_hook(hook) for m in leaves]
        was_training = self.body.training
        self.body.eval()
        self.body(torch.zeros(1, in_channels, PROBE_SIDE, PROBE_SIDE, device=next(self.parameters()).device))
        self.body.train(was_training)
        for h in handles:
            h.remove()
        for m in fine:
            m.requires_grad_(False)

    @torch.no_grad()
    def _probe(self, in_channels: int) -> tuple[dict[str, int], dict[int, int]]:
        was_training = self.body.training
        self.body.eval()
        device = next(self.body.parameters()).device
        feats = self.body(torch.zeros(1, in_channels, PROBE_SIDE, PROBE_SIDE, device=device))
        self.body.train(was_training)
        keep, channels = {}, {}
        for layer, f in feats.items():  # in depth order: a later map of one stride replaces an earlier
            stride = PROBE_SIDE // f.shape[-1]
            if stride > 1:
                keep = {k: s for k, s in keep.items() if s != stride}
                keep[layer], channels[stride] = stride, f.shape[1]
        return keep, dict(sorted(channels.items()))

    @property
    def strides(self) -> list[int]:
        return list(self.channels)

    def forward(self, x: Tensor) -> dict[int, Tensor]:
        feats = self.body(x)
        return {s: feats[layer] for layer, s in self.keep.items()}
