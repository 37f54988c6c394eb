"""Helpers shared by the classifier builders."""
from __future__ import annotations

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.registry import list_models, model_info


def check_pretrained(name: str, pretrained: bool) -> None:
    """Refuse ``pretrained=True`` for ``name``, which has no pretrained weights."""
    if pretrained:
        have = [n for n in list_models() if model_info(n).pretrained]
        raise CnnlabError(f"model {name!r} has no pretrained weights; "
                          f"models with them: {', '.join(have) or 'none'}")


def with_in_channels(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """``conv`` itself, or a fresh copy taking ``in_channels`` inputs (grey or multispectral images).

    The copy is He-initialised (fan_out, ReLU), as torchvision initialises its convolutions.
    """
    if in_channels == conv.in_channels:
        return conv
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=conv.bias is not None)
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    return new
