"""From a uint8 batch to model input, shared by the tasks that feed whole images to a CNN."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from cnnlab.errors import CnnlabError
from cnnlab.models import list_models, model_info


def normalise(images: Tensor, input_shape: tuple[int, int, int], mean: list[float], std: list[float],
              channels_last: bool = True, resize: bool = True) -> Tensor:
    """uint8 (B, C, H, W) on the device -> float (B, c, h, w) model input, normalised per channel
    (and resized to the input shape's h x w unless ``resize`` is off: segmentation keeps its size)."""
    c, h, w = input_shape
    x = images.float() / 255  # out of place: a float batch (0..255) stays the caller's
    if x.shape[1] != c:
        x = match_channels(x, c)
    if resize and x.shape[-2:] != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    x = (x - torch.tensor(mean, device=x.device).view(1, -1, 1, 1)) / torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def input_stats(cfg, model_name: str, train) -> tuple[list[float], list[float]]:
    """Per-channel input mean/std on the 0..1 scale: the pretrained weights' own (``--pretrained``),
    else measured on the training split."""
    if not cfg.pretrained:
        return channel_stats(train)
    info = model_info(model_name)
    if info.mean is None:
        known = ", ".join(n for n in list_models() if model_info(n).pretrained)
        raise CnnlabError(f"--pretrained: {model_name!r} has no pretrained weights (these have: {known})")
    return list(info.mean), list(info.std)


def channel_stats(data) -> tuple[list[float], list[float]]:
    """Per-channel mean/std on the 0..1 scale, from up to 10,000 training images."""
    if isinstance(getattr(data, "images", None), Tensor):  # in memory: classification, masks, captions
        x = data.images[:10_000]
    else:
        step = max(1, len(data) // 500)
        x = torch.stack([data[i][0] for i in range(0, len(data), step)])
    x = x.float().div_(255).transpose(0, 1).flatten(1)  # (C, N*H*W)
    return x.mean(1).tolist(), x.std(1).clamp(min=1e-3).tolist()


def match_channels(x: Tensor, c: int) -> Tensor:
    """Gray -> RGB by repetition, RGB -> gray by luminance."""
    if x.shape[1] == 1:
        return x.expand(-1, c, -1, -1)
    if c == 1 and x.shape[1] >= 3:
        w = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
        return (x[:, :3] * w).sum(1, keepdim=True)
    raise CnnlabError(f"cannot feed {x.shape[1]}-channel images to a {c}-channel model")
