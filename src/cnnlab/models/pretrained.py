"""torchvision's ImageNet weights for the torchvision-based classifiers (ResNets, VGGs, GoogLeNet).

    model = get_model("resnet18", pretrained=True)                 # 1000 ImageNet classes
    model = get_model("resnet18", pretrained=True, num_classes=5, in_channels=1)   # transfer

The weights are torchvision's ``IMAGENET1K_V1`` files, looked up in the torch hub cache
(``torch.hub.get_dir()/checkpoints``: ``$TORCH_HOME/hub/checkpoints``, by default
``~/.cache/torch/hub/checkpoints``) and downloaded there when absent and the internet answers.
Offline and not cached, one ``CnnlabError`` line names the file, the folder and the URL.

cnnlab's ResNet, VGG and GoogLeNet subclass torchvision's, so the state-dict keys are the same;
GoogLeNet's file also holds the two auxiliary classifiers, which cnnlab leaves out. As for
EfficientNet-Lite0, a head of another size than 1000 keeps its fresh initialisation (transfer
learning) and a first convolution for other than 3 input channels is adapted from the RGB filters.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.efficientnet import adapt_input_conv

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # on the 0..1 scale: torchvision's ImageNet normalisation
IMAGENET_STD = (0.229, 0.224, 0.225)
# GoogLeNet's weights came from TensorFlow, which maps pixels to -1..1: torchvision's
# ``transform_input`` turns ImageNet-normalised input into that; cnnlab normalises so directly.
GOOGLENET_MEAN = GOOGLENET_STD = (0.5, 0.5, 0.5)

# model name -> (torchvision weights enum, key of the first convolution's weight)
_WEIGHTS = {
    "resnet18": ("ResNet18_Weights", "conv1.weight"),
    "resnet34": ("ResNet34_Weights", "conv1.weight"),
    "resnet50": ("ResNet50_Weights", "conv1.weight"),
    "resnet101": ("ResNet101_Weights", "conv1.weight"),
    "resnet152": ("ResNet152_Weights", "conv1.weight"),
    "vgg11": ("VGG11_Weights", "features.0.weight"),
    "vgg11_bn": ("VGG11_BN_Weights", "features.0.weight"),
    "vgg13": ("VGG13_Weights", "features.0.weight"),
    "vgg13_bn": ("VGG13_BN_Weights", "features.0.weight"),
    "vgg16": ("VGG16_Weights", "features.0.weight"),
    "vgg16_bn": ("VGG16_BN_Weights", "features.0.weight"),
    "vgg19": ("VGG19_Weights", "features.0.weight"),
    "vgg19_bn": ("VGG19_BN_Weights", "features.0.weight"),
    "googlenet": ("GoogLeNet_Weights", "conv1.conv.weight"),
    "mobilenet_v2": ("MobileNet_V2_Weights", "features.0.0.weight"),
    "mobilenet_v3_small": ("MobileNet_V3_Small_Weights", "features.0.0.weight"),
    "mobilenet_v3_large": ("MobileNet_V3_Large_Weights", "features.0.0.weight"),
}
_EXTRA_PREFIXES = ("aux1.", "aux2.")  # GoogLeNet's auxiliary classifiers: in the file, not in cnnlab's model


def has_torchvision_weights(name: str) -> bool:
    return name in _WEIGHTS


def weights_url(name: str) -> str:
    """The URL of ``name``'s torchvision ImageNet weights (``*_Weights.IMAGENET1K_V1``)."""
    import torchvision.models as tvm

    return getattr(tvm, _WEIGHTS[name][0]).IMAGENET1K_V1.url


def weights_folder() -> Path:
    """Where torch keeps downloaded weights: ``torch.hub.get_dir()/checkpoints`` (follows ``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_path(name: str) -> Path:
    """The cached weight file of ``name`` (which may not exist yet)."""
    return weights_folder() / Path(weights_url(name)).name


def _download(url: str, folder: Path) -> None:
    """Fetch ``url`` into ``folder``: torch hub writes a temporary file and renames it when whole,
    after checking the SHA-256 prefix in the file name; a progress bar only on a terminal."""
    from torch.hub import HASH_REGEX, download_url_to_file

    name = Path(url).name
    match = HASH_REGEX.search(name)
    folder.mkdir(parents=True, exist_ok=True)
    download_url_to_file(url, str(folder / name), hash_prefix=match.group(1) if match else None,
                         progress=sys.stderr.isatty())


def load_state(name: str) -> dict[str, torch.Tensor]:
    """``name``'s ImageNet state dict from the hub cache, downloaded first if absent."""
    url, path = weights_url(name), weights_path(name)
    if not path.is_file():
        try:
            _download(url, path.parent)
        except Exception as e:  # offline, proxy, disk full, bad hash: one line, the cause chained
            raise CnnlabError(f"{name} pretrained: weight file {path.name} is not in {path.parent} and could not "
                              f"be downloaded ({_reason(e)}); download {url} into that folder "
                              f"(it follows $TORCH_HOME)") from e
        if not path.is_file():
            raise CnnlabError(f"{name} pretrained: downloading {url} left no {path.name} in {path.parent}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or not a torch file
        raise CnnlabError(f"{name} pretrained: {path} is not a readable weight file ({type(e).__name__}); "
                          f"delete it and put {url} there again") from e
    if not isinstance(state, dict):
        raise CnnlabError(f"{name} pretrained: {path} holds a {type(state).__name__}, not a state dict")
    return state


def load_imagenet_weights(model: nn.Module, name: str, head: str) -> nn.Module:
    """Load ``name``'s torchvision ImageNet weights into ``model`` (a cnnlab ResNet, VGG or GoogLeNet).

    ``head``: the dotted name of the classifier head (the registry's); its tensors keep their fresh
    initialisation when their shape differs (another number of classes). The first convolution
    is adapted to ``model.in_channels`` (summed for grey, tiled for more channels).
    """
    state = load_state(name)
    state = {k: v for k, v in state.items() if not k.startswith(_EXTRA_PREFIXES)}
    own = model.state_dict()
    first = _WEIGHTS[name][1]
    if first in state and first in own and state[first].shape != own[first].shape:
        state[first] = adapt_input_conv(state[first], own[first].shape[1])
    for k, v in own.items():  # another head size: keep the fresh head (transfer learning)
        if k.startswith(head + ".") and k in state and state[k].shape != v.shape:
            state[k] = v
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise CnnlabError(f"{name} pretrained: {weights_path(name)} does not fit the model "
                          f"(missing {_few(missing)}; unexpected {_few(unexpected)}; other shape {_few(wrong)})")
    model.load_state_dict(state)
    return model


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:120]}" if text else type(e).__name__


def _few(keys: list[str], n: int = 3) -> str:
    return (", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")) if keys else "none"
