"""A fully connected network on the flattened pixels: the lecture's foil for the CNN.

    model = MLP(num_classes=10, in_channels=1, image_size=28, hidden=(256, 128))
    model(torch.randn(8, 1, 28, 28)).shape   # (8, 10)

Every first-layer unit sees every pixel, so the first layer alone has
``C * H * W * hidden[0] + hidden[0]`` parameters (about 0.9 billion for a 1080x1080x3 photo
and 256 units), and nothing in it knows which pixels are neighbours.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.common import check_pretrained
from cnnlab.models.registry import register_model


class MLP(nn.Module):
    """Flatten -> (Linear -> ReLU) per hidden width -> dropout -> Linear to the classes.

    ``forward_features`` returns the last hidden layer as a (B, hidden[-1], 1, 1) map: a fully
    connected layer is a convolution whose kernel covers the whole image.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, *,
                 image_size: int | tuple[int, int] = 28,  # H x W the first layer is built for
                 hidden: tuple[int, ...] = (256, 128),   # widths of the hidden layers
                 dropout: float = 0.2):                  # before the output layer
        super().__init__()
        if not hidden:
            raise CnnlabError("mlp: hidden must name at least one layer width")
        self.num_classes, self.in_channels = num_classes, in_channels
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        self.image_size = (h, w)
        layers, n = OrderedDict(flatten=nn.Flatten()), in_channels * h * w  # (B, C*H*W)
        for i, width in enumerate(hidden, 1):
            layers[f"fc{i}"] = nn.Linear(n, width)
            layers[f"relu{i}"] = nn.ReLU(inplace=True)
            n = width
        self.features = nn.Sequential(layers)
        self.head = nn.Sequential(OrderedDict(flatten=nn.Flatten(), dropout=nn.Dropout(dropout),
                                              logits=nn.Linear(n, num_classes)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != (self.in_channels, *self.image_size):
            raise CnnlabError(f"mlp was built for {self.in_channels}x{self.image_size[0]}x{self.image_size[1]} "
                              f"inputs, got {'x'.join(map(str, x.shape[1:]))}; build it with image_size="
                              f"{x.shape[-1]} (model_args) or resize the data (image_size)")
        return self.features(x)[:, :, None, None]  # (B, hidden[-1], 1, 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("mlp", input_size=(1, 28, 28), paper="a fully connected network on flattened pixels",
                tags=("lecture", "fully-connected"), head="head")
def mlp(num_classes: int = 10, in_channels: int = 1, pretrained: bool = False, **kwargs) -> MLP:
    """The fully connected baseline (see :class:`MLP` for ``image_size``, ``hidden``, ``dropout``)."""
    check_pretrained("mlp", pretrained)
    return MLP(num_classes, in_channels, **kwargs)
