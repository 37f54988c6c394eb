"""Where the model looks: class activation maps for the predicted or a chosen class.

* Grad-CAM (Selvaraju et al. 2017): the target layer's feature maps A_k weighted by the mean
  gradient of the class score over each map, ReLU(sum_k w_k A_k), upsampled to the image.
* Grad-CAM++ (Chattopadhay et al. 2018): weights from higher-order gradients (several objects).
* Saliency (Simonyan et al. 2014): |d score / d pixel|, the maximum over colour channels
  (scaled so that the top 1% of pixels saturate).

    heat, info = cam(model, task, image, method="gradcam")   # (H, W) in [0, 1]; info["class"]
    plot_cam(image, heat, info, "cam_gradcam.png")

The CAMs come from the ``grad-cam`` package (pytorch_grad_cam). The target layer is the last
conv layer (``cam_layer``: after its BatchNorm and ReLU when they follow it in an ``nn.Sequential``)
unless ``layer`` names another module. CAMs run in fp32 with autocast off, on any memory format.
"""
from __future__ import annotations

import copy
import difflib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from cnnlab.errors import CnnlabError  # noqa: E402
from cnnlab.interpret.features import conv_layers, find_layer, show_image  # noqa: E402
from cnnlab.figures import save_figure  # noqa: E402

METHODS = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "saliency": "saliency"}
# Layers that may follow a convolution within its conv layer (normalisation, non-linearity).
_CONV_LAYER_PARTS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU,
                     nn.GELU, nn.SiLU, nn.Hardswish)


def last_conv_layer(model: nn.Module) -> str:
    """The name of the model's last conv module (in definition order)."""
    convs = conv_layers(model)
    if not convs:
        raise CnnlabError(f"{type(model).__name__} has no conv layer to take a CAM from")
    return convs[-1][0]


def cam_layer(model: nn.Module) -> str:
    """The default CAM target: the last conv layer's output after the normalisation and
    non-linearity that follow its convolution in the same ``nn.Sequential`` (the rectified
    maps of the Grad-CAM paper), else the convolution's own output."""
    name = last_conv_layer(model)
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name)
    if isinstance(parent, nn.Sequential):
        keys = list(parent._modules)
        for key in keys[keys.index(child) + 1:]:
            if not isinstance(parent._modules[key], _CONV_LAYER_PARTS):
                break
            name = f"{parent_name}.{key}" if parent_name else key
    return name


def class_index(classes: list[str], target: int | str | None) -> int | None:
    """A class given by index or name -> its index (None stays None: the predicted class)."""
    if target is None:
        return None
    if isinstance(target, str) and target in classes:
        return classes.index(target)
    if isinstance(target, str) and target.isdigit():
        target = int(target)
    if isinstance(target, int) and 0 <= target < len(classes):
        return target
    close = difflib.get_close_matches(str(target), classes, n=5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else \
        f"; give a name such as {classes[0]!r} or an index 0..{len(classes) - 1}"
    raise CnnlabError(f"unknown class {target!r}{hint}")


def _fp32(model: nn.Module) -> nn.Module:
    """The model itself when its weights are fp32, else an fp32 copy (bf16/fp16 weights)."""
    if all(p.dtype == torch.float32 for p in model.parameters() if p.is_floating_point()):
        return model
    return copy.deepcopy(model).float()


def cam(model: nn.Module, task, image: Tensor, method: str = "gradcam", target_class: int | str | None = None,
        layer: str | None = None, size: tuple[int, int] | None = None) -> tuple[np.ndarray, dict]:
    """A heatmap of what drives ``target_class`` (default: the predicted class) for one uint8
    (C, H, W) image: float32 (H, W) in [0, 1] at ``size`` (default: the image's size), and info
    ``{"method", "class", "class_index", "prob", "layer"}``.
    """
    if method not in METHODS:
        raise CnnlabError(f"unknown CAM method {method!r}; choose from {', '.join(METHODS)}")
    k = class_index(task.classes, target_class)
    net = _fp32(model)
    was_training = net.training
    device = next(net.parameters()).device
    x = task.prepare(image[None].to(device)).float().detach().requires_grad_()  # (1, C, h, w) fp32
    try:
        net.eval()
        with torch.autocast(device.type, enabled=False):
            if method == "saliency":
                layer = "input"
                logits, heat = _saliency(net, x, k)
            else:
                layer = layer or cam_layer(net)
                logits, heat = _grad_cam(net, x, k, find_layer(net, layer), plus=method == "gradcam++")
    finally:
        net.train(was_training)
    probs = logits.detach().float().softmax(-1)  # (K,)
    k = int(probs.argmax()) if k is None else k
    info = {"method": method, "class": task.classes[k], "class_index": k, "prob": float(probs[k]), "layer": layer}
    return _resize(heat, tuple(size or image.shape[-2:])), info


def _saliency(model: nn.Module, x: Tensor, k: int | None) -> tuple[Tensor, np.ndarray]:
    logits = model(x)[0]  # (K,)
    (grad,) = torch.autograd.grad(logits[int(logits.argmax()) if k is None else k], x)  # (1, C, h, w)
    heat = grad[0].abs().amax(0)  # (h, w): the largest |gradient| over colour channels
    top = heat.flatten().quantile(0.99).clamp(min=1e-12)  # a few pixels dominate raw gradients:
    return logits, (heat / top).clamp(max=1).cpu().numpy()  # the top 1% saturate


def _grad_cam(model: nn.Module, x: Tensor, k: int | None, target: nn.Module, plus: bool) -> tuple[Tensor, np.ndarray]:
    try:
        from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError as e:
        raise CnnlabError("Grad-CAM needs the grad-cam package: pip install grad-cam") from e

    method = (GradCAMPlusPlus if plus else GradCAM)(model=model, target_layers=[target])
    # Run on a copy of the target's output, so that an in-place ReLU after it cannot
    # overwrite the activations the CAM saved (registered after the CAM's own hooks).
    copy_hook = target.register_forward_hook(lambda module, args, output: output.clone())
    try:
        heat = method(input_tensor=x, targets=None if k is None else [ClassifierOutputTarget(k)])[0]  # (h, w)
    except ValueError as e:  # the package's message for a layer with no (C, h, w) output
        raise CnnlabError(f"cannot take a CAM at this layer: {e}") from None
    finally:
        copy_hook.remove()
        method.activations_and_grads.release()
    return method.outputs[0], heat


def _resize(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) -> float32 (H, W) in [0, 1], bilinear."""
    t = torch.as_tensor(np.asarray(heat, dtype=np.float32))[None, None]
    if tuple(t.shape[-2:]) != size:
        t = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    t = t[0, 0].clamp(min=0)
    return (t / t.max().clamp(min=1e-12)).numpy().astype(np.float32)


def overlay(image: Tensor, heatmap: np.ndarray, alpha: float = 0.45, cmap: str = "jet") -> Tensor:
    """The heatmap in colour over the image: uint8 (3, H, W) (gray images become RGB)."""
    heat = _resize(heatmap, tuple(image.shape[-2:]))
    colour = torch.from_numpy(plt.get_cmap(cmap)(heat)[..., :3]).permute(2, 0, 1).float() * 255  # (3, H, W)
    rgb = image[:3].float() if image.shape[0] >= 3 else image[:1].float().expand(3, -1, -1)
    return ((1 - alpha) * rgb + alpha * colour).round().clamp(0, 255).to(torch.uint8)


def plot_cam(image: Tensor, heatmap: np.ndarray, info: dict, path: str | Path) -> Path:
    """Image, heatmap and overlay side by side, titled with the method, class, probability and layer."""
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), layout="constrained")
    show_image(axes[0], image)
    axes[0].set_title("input", fontsize=9)
    axes[1].imshow(heatmap, cmap="jet", vmin=0, vmax=1)
    axes[1].set_axis_off()
    axes[1].set_title(METHODS[info["method"]], fontsize=9)
    show_image(axes[2], overlay(image, heatmap))
    axes[2].set_title("overlay", fontsize=9)
    fig.suptitle(f"{METHODS[info['method']]} for {info['class']!r} (p = {info['prob']:.3f}), "
                 f"layer {info['layer']}", fontsize=10)
    return save_figure(fig, path, dpi=110)
