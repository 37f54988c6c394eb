"""What every layer sees: feature maps, first-layer filters and the feature hierarchy.

The lecture's "hierarchy of features": early layers respond to edges and dark spots, middle
layers to parts, late layers to whole objects. Three views of any trained classifier:

    maps = feature_maps(model, task, image)                  # {layer: (C, h, w)}
    plot_feature_maps(maps, summarize(model, task.input_shape), "feature_maps.png", image)
    plot_filters(first_layer_filters(model), "filters.png")  # the learned edge detectors
    plot_top_patches(top_patches(model, task, dataset), "hierarchy.png")

A layer is any module of the model, named by its path (``features.block1.conv``); the
defaults are the convolutional layers, whose output is the pre-activation feature map.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from cnnlab.errors import CnnlabError  # noqa: E402
from cnnlab.images import resize  # noqa: E402
from cnnlab.models.summary import LayerRow, summarize  # noqa: E402
from cnnlab.figures import map_style, save_figure  # noqa: E402

# ---------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's 2D convolutional layers as (name, module), in definition order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The module called ``name``; an unknown name is a ``CnnlabError`` listing the conv layers."""
    modules = dict(model.named_modules())
    if not name or name not in modules:
        convs = ", ".join(n for n, _ in conv_layers(model))
        raise CnnlabError(f"unknown layer {name!r}; this model's conv layers are: {convs} "
                          f"(any module name of the model also works)")
    return modules[name]


def pick_layers(names: list[str], n: int = 3) -> list[str]:
    """``n`` names spread evenly from the first to the last (all of them when there are fewer)."""
    if len(names) <= n:
        return list(names)
    if n == 1:
        return names[-1:]
    return [names[round(i * (len(names) - 1) / (n - 1))] for i in range(n)]


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _capture(model: nn.Module, names: list[str], store: dict) -> list:
    """Forward hooks that put a float copy of each named layer's output in ``store[name]``
    (a copy: a following in-place ReLU would otherwise overwrite it)."""
    def hook(name):
        def save(module, args, output):
            store[name] = output.detach().float().clone()
        return save

    return [find_layer(model, n).register_forward_hook(hook(n)) for n in names]


@torch.no_grad()
def _run(model: nn.Module, task, images: Tensor, names: list[str]) -> dict[str, Tensor]:
    """uint8 (B, C, H, W) -> {layer: output (B, C', h, w)}, in fp32 and eval mode."""
    store: dict[str, Tensor] = {}
    handles = _capture(model, names, store)
    was_training = model.training
    try:
        model.eval()
        with torch.autocast(_device(model).type, enabled=False):
            model(task.prepare(images.to(_device(model))))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return store


# ---------------------------------------------------------------------------------------
# Feature maps
# ---------------------------------------------------------------------------------------


def feature_maps(model: nn.Module, task, image: Tensor, layers: list[str] | None = None) -> dict[str, Tensor]:
    """The feature maps of one uint8 (C, H, W) image at ``layers`` (default: every conv layer).

    Returns {layer name: float (C', h, w) on the CPU}, in the order of ``layers``.
    """
    names = list(layers) if layers is not None else [n for n, _ in conv_layers(model)]
    store = _run(model, task, image[None], names)
    missing = [n for n in names if n not in store or store[n].dim() != 4]
    if missing:
        raise CnnlabError(f"layers {', '.join(missing)} give no (C, h, w) feature map for this input")
    return {n: store[n][0].cpu() for n in names}


def _layer_title(name: str, row: LayerRow | None, shape: tuple[int, ...]) -> str:
    c, h, w = shape
    rf = "" if row is None or row.receptive_field is None else \
        f", receptive field {row.receptive_field:g}x{row.receptive_field:g} px (jump {row.jump:g})"
    return f"{name}: {h} x {w} x {c}{rf}"


def plot_feature_maps(maps: dict[str, Tensor], layer_info: Iterable[LayerRow], path: str | Path,
                      image: Tensor | None = None, max_channels: int = 16) -> Path:
    """One grid per layer of its ``max_channels`` most active channels, titled with the layer's
    name, output volume h x w x d and receptive field (``layer_info``: ``summarize`` rows)."""
    rows = {r.name: r for r in layer_info}
    cols = min(8, max_channels)
    grid_rows = {n: math.ceil(min(max_channels, m.shape[0]) / cols) for n, m in maps.items()}
    heights = ([2.2] if image is not None else []) + [0.35 + 1.05 * r for r in grid_rows.values()]
    fig = plt.figure(figsize=(cols * 1.05, sum(heights)), layout="constrained")
    subfigs = fig.subfigures(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0]
    if image is not None:
        ax = subfigs[0].subplots()
        show_image(ax, image)
        subfigs[0].suptitle(f"input: {image.shape[1]} x {image.shape[2]} x {image.shape[0]}", fontsize=9)
        subfigs = subfigs[1:]
    for sub, (name, fmap) in zip(subfigs, maps.items()):
        n = min(max_channels, fmap.shape[0])
        order = fmap.mean((1, 2)).topk(n).indices  # most active channels first
        axes = sub.subplots(grid_rows[name], cols, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for ax, ch in zip(axes.flat, order.tolist()):
            ax.imshow(fmap[ch].numpy(), interpolation="nearest", **map_style(fmap[ch].numpy(), "viridis", clip=0))
            ax.set_title(f"ch {ch}", fontsize=6, pad=1)
        sub.suptitle(_layer_title(name, rows.get(name), tuple(fmap.shape)), fontsize=8)
    return save_figure(fig, path, dpi=110)


def show_image(ax, image: Tensor) -> None:
    """uint8 (C, H, W) -> an axis showing it (gray for one channel)."""
    if image.shape[0] == 1:
        ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(image[:3].permute(1, 2, 0).numpy())
    ax.set_axis_off()


# ---------------------------------------------------------------------------------------
# First-layer filters
# ---------------------------------------------------------------------------------------


def first_layer_filters(model: nn.Module) -> Tensor:
    """The first conv layer's weights, float (O, C, k, k) on the CPU."""
    convs = conv_layers(model)
    if not convs:
        raise CnnlabError(f"{type(model).__name__} has no conv layer")
    return convs[0][1].weight.detach().float().cpu()


def plot_filters(filters: Tensor, path: str | Path, max_filters: int = 64, title: str = "first-layer filters") -> Path:
    """Filters (O, C, k, k) as small images, each stretched to its own min..max: RGB filters
    in colour, others in gray (the mean over input channels when C is not 3)."""
    w = filters[:max_filters].float()
    lo = w.amin((1, 2, 3), keepdim=True)
    hi = w.amax((1, 2, 3), keepdim=True)
    w = (w - lo) / (hi - lo).clamp(min=1e-12)  # per filter to 0..1
    cols = min(8, len(w))
    rows = math.ceil(len(w) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.8 + 0.5), squeeze=False,
                             layout="constrained")
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, f in zip(axes.flat, w):
        if f.shape[0] == 3:
            ax.imshow(f.permute(1, 2, 0).numpy(), interpolation="nearest")
        else:
            ax.imshow(f.mean(0).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    o, c, k, _ = filters.shape
    fig.suptitle(f"{title}: {o} x ({k} x {k} x {c})", fontsize=9)
    return save_figure(fig, path, dpi=110)


# ---------------------------------------------------------------------------------------
# Feature hierarchy: the image patches that drive units most
# ---------------------------------------------------------------------------------------


@dataclass
class LayerPatches:
    """The top patches of a few channels of one layer."""

    layer: str
    receptive_field: float  # side in input pixels
    jump: float  # input pixels between neighbouring units
    channels: list[int]
    patches: Tensor  # uint8 (channels, k, C, s, s): crops of side s = min(receptive field, image)
    activations: Tensor  # (channels, k) the unit's maximum on each image, best first
    image_index: Tensor  # (channels, k) which dataset images


def _images(dataset, n: int) -> tuple[Tensor, Tensor]:
    """Up to ``n`` images spread over ``dataset`` (in-memory or file-backed): their dataset
    indices (N,) and the uint8 images (N, C, H, W)."""
    index = torch.linspace(0, len(dataset) - 1, min(n, len(dataset))).round().long()
    if hasattr(dataset, "images"):
        return index, dataset.images[index]
    return index, torch.stack([dataset[i][0] for i in index.tolist()])


def _crop(images: Tensor, center: tuple[float, float], size: tuple[int, int]) -> Tensor:
    """(C, H, W) window of ``size`` around ``center`` (y, x), shifted to lie inside the image."""
    (cy, cx), (sh, sw) = center, size
    h, w = images.shape[-2:]
    y0 = min(max(round(cy - (sh - 1) / 2), 0), h - sh)
    x0 = min(max(round(cx - (sw - 1) / 2), 0), w - sw)
    return images[..., y0:y0 + sh, x0:x0 + sw]


def top_patches(model: nn.Module, task, dataset, layers: list[str] | None = None, channels_per_layer: int = 4,
                k: int = 6, max_images: int = 500, batch_size: int = 100,
                layer_info: Iterable[LayerRow] | None = None) -> list[LayerPatches]:
    """For an early, a middle and a late conv layer (or ``layers``): the ``k`` dataset patches
    that most activate each of ``channels_per_layer`` of its most selective channels.

    Each unit sees a receptive-field-sized window of the input; unit (y, x) of a map of height h
    is centred at ``offset + y * jump`` with ``offset = ((H - 1) - (h - 1) * jump) / 2`` (the map
    centred on the image, as "same" and "valid" padding give), from the ``summarize`` field and
    jump. A channel is selective when its top-k responses stand far above its mean response.
    """
    names = list(layers) if layers is not None else pick_layers([n for n, _ in conv_layers(model)], 3)
    info = {r.name: r for r in (layer_info if layer_info is not None else summarize(model, task.input_shape))}
    flat = [n for n in names if n not in info or info[n].receptive_field is None]
    if flat:
        raise CnnlabError(f"layers {', '.join(flat)} have no receptive field (not spatial feature maps)")
    c, H, W = task.input_shape
    index, images = _images(dataset, max_images)
    images = resize(images, (H, W))  # (N, C, H, W) in the model's input frame
    peak, where, shape = {n: [] for n in names}, {n: [] for n in names}, {}
    for start in range(0, len(images), batch_size):
        for name, out in _run(model, task, images[start:start + batch_size], names).items():
            value, loc = out.flatten(2).max(2)  # (B, C') each unit's best response and its place
            peak[name].append(value.cpu())
            where[name].append(loc.cpu())
            shape[name] = out.shape[-2:]
    result = []
    for name in names:
        acts, locs = torch.cat(peak[name]), torch.cat(where[name])  # (N, C')
        kk = min(k, len(acts))
        top = acts.topk(kk, dim=0).values.mean(0)
        selectivity = (top - acts.mean(0)) / acts.std(0).nan_to_num(0).clamp(min=1e-6)
        channels = selectivity.topk(min(channels_per_layer, acts.shape[1])).indices.tolist()
        r, j = info[name].receptive_field, info[name].jump
        h, w = shape[name]
        off_y, off_x = ((H - 1) - (h - 1) * j) / 2, ((W - 1) - (w - 1) * j) / 2
        size = (min(math.ceil(r), H), min(math.ceil(r), W))
        values, best = acts[:, channels].topk(kk, dim=0)  # (kk, channels)
        crops = []
        for ci, ch in enumerate(channels):
            for i in best[:, ci].tolist():
                y, x = divmod(int(locs[i, ch]), w)
                crops.append(_crop(images[i], (off_y + y * j, off_x + x * j), size))
        patches = torch.stack(crops).view(len(channels), kk, c, *size)
        result.append(LayerPatches(name, r, j, channels, patches, values.T.contiguous(), index[best.T]))
    return result


def plot_top_patches(hierarchy: list[LayerPatches], path: str | Path) -> Path:
    """One block per layer (early to late): a row per channel of its top image patches."""
    depth = ["early", "middle", "late"] if len(hierarchy) == 3 else [f"layer {i + 1}" for i in range(len(hierarchy))]
    k = max(lp.patches.shape[1] for lp in hierarchy)
    heights = [0.4 + 0.9 * len(lp.channels) for lp in hierarchy]
    fig = plt.figure(figsize=(1.0 + 0.9 * k, sum(heights)), layout="constrained")
    subfigs = fig.subfigures(len(hierarchy), 1, height_ratios=heights, squeeze=False)[:, 0]
    for sub, lp, word in zip(subfigs, hierarchy, depth):
        axes = sub.subplots(len(lp.channels), k, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for row, ch in enumerate(lp.channels):
            for col in range(lp.patches.shape[1]):
                show_image(axes[row, col], lp.patches[row, col])
            axes[row, 0].set_axis_on()
            axes[row, 0].set(xticks=[], yticks=[])
            axes[row, 0].set_ylabel(f"ch {ch}", fontsize=7)
        sub.suptitle(f"{word}: {lp.layer}, receptive field {lp.receptive_field:g} px", fontsize=8)
    return save_figure(fig, path, dpi=110)
