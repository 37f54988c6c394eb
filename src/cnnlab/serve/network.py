"""The network overview and one unit's arithmetic, for the page (CNN Explainer's two views, for
any classifier the service holds):

    overview(lm, seen, maps=4)     # every conv / ReLU / pool layer's maps for this image (the class's path), the softmax
    unit(lm, seen, layer, c, y, x)  # how one value of a conv (or max-pool) map was computed, then BN and ReLU

Both run the model once in fp32 eval mode with hooks on its layers (as ``interpret.features`` does)
and read the numbers the layers really computed: a unit's sum is checked against the conv's own output.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from cnnlab.errors import CnnlabError
from cnnlab.interpret.features import find_layer
from cnnlab.serve import render

SHOWN = (nn.Conv2d, nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.MaxPool2d, nn.AvgPool2d)  # layers the overview draws
FOLLOW = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6)  # after a conv, at the same unit: written out in the unit's story
MAX_CHANNELS_SHOWN = 16  # a unit's input channels written out one by one (all are summed)


@torch.no_grad()
def _forward(lm, seen: Tensor, names: list[str], inputs: list[str] = ()) -> tuple[dict, dict, Tensor]:
    """One fp32 eval forward of uint8 (C, h, w) ``seen``: ({name: output[0]}, {name: input[0]}, logits[0]).
    The outputs are in the order the layers ran; a module that ran more than once (one activation
    module shared by several places) is left out: no single map is its."""
    model, task = lm.model, lm.task
    outs, ins, handles, calls = {}, {}, [], {}

    def keep_out(name):
        def keep(m, a, out):
            calls[name] = calls.get(name, 0) + 1
            outs[name] = out.detach().float()[0].clone()
        return keep

    def keep_in(name):
        return lambda m, a: ins.__setitem__(name, a[0].detach().float()[0].clone())

    for n in names:
        handles.append(find_layer(model, n).register_forward_hook(keep_out(n)))
    for n in inputs:
        handles.append(find_layer(model, n).register_forward_pre_hook(keep_in(n)))
    was = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.autocast(device.type, enabled=False):
            logits = model(task.prepare(seen[None].to(device))).float()[0].cpu()
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return ({k: v.cpu() for k, v in outs.items() if calls[k] == 1}, {k: v.cpu() for k, v in ins.items()}, logits)


def _shown_layers(model: nn.Module, rows: list[dict]) -> list[dict]:
    """The architecture rows the overview draws: convs, activations and pools with a spatial map."""
    modules = dict(model.named_modules())
    return [r for r in rows if r["name"] in modules and isinstance(modules[r["name"]], SHOWN)
            and len(r["output"]) == 3 and r["output"][0] * r["output"][1] > 1]


# ---------------------------------------------------------------------- the overview
ORDERS = ("class", "active")  # which channels a conv shows: the predicted class's path, or the most active


def overview(lm, seen: Tensor, rows: list[dict], maps: int = 4, topk: int = 5, order: str = "class") -> dict:
    """The layers left to right, each with ``maps`` activation maps for ``seen`` (grey PNGs, each
    scaled to its own min..max), then the softmax over the logits. Each conv shows the channels that
    add most to the predicted class's score (``order="class"``: activation x gradient summed over the
    map, as Grad-CAM weighs channels: the predicted class's path) or its most active ones
    (``"active"``); the activations and pools after a conv show the same channels."""
    if order not in ORDERS:
        raise CnnlabError(f"order {order!r}: expected one of {', '.join(ORDERS)}")
    layers = _shown_layers(lm.model, rows)
    convs = [r["name"] for r in layers if r["type"].startswith("Conv")]
    outs, _, logits = _forward(lm, seen, [r["name"] for r in layers])
    rows_by_name = {r["name"]: r for r in layers}
    layers = [rows_by_name[n] for n in outs if outs[n].dim() == 3]  # in the order they ran, each run once
    convs = [n for n in convs if n in outs]
    predicted = int(logits.argmax())
    weight = _contributions(lm, seen, convs, predicted) if order == "class" else {}
    order = order if weight or order == "active" else "active"  # said in the reply: the most active instead
    shown, channels = [], None
    for r in layers:
        fmap = outs[r["name"]]  # (C, h, w)
        if channels is None or r["name"] in convs or max(channels) >= fmap.shape[0]:
            score = weight.get(r["name"], fmap.mean((1, 2)))  # (C,) per channel
            channels = score.topk(min(maps, fmap.shape[0])).indices.tolist()  # first: the largest
        shown.append({"name": r["name"], "label": r["label"], "type": r["type"], "shape": list(fmap.shape),
                      "kernel": r["kernel"], "stride": r["stride"], "conv": r["conv"],
                      "maps": [_map_json(fmap[c], c) for c in channels]})
    probs = logits.softmax(0)
    top = probs.topk(min(topk, len(probs))).indices.tolist()
    return {"input": {"shape": list(seen.shape), "image": render.png_data_url(seen)}, "layers": shown,
            "order": order, "path_class": lm.task.classes[predicted],
            "softmax": {"logits": [float(logits[i]) for i in top], "probs": [float(probs[i]) for i in top],
                        "classes": [lm.task.classes[i] for i in top],
                        "sum_exp": float(logits.double().exp().sum()), "classes_total": len(probs)}}


def _contributions(lm, seen: Tensor, convs: list[str], target: int) -> dict[str, Tensor]:
    """Per conv layer, each channel's (activation x gradient of the ``target`` logit), summed over
    its map: (C,) how much the channel adds to that class's score, to first order."""
    model, task = lm.model, lm.task
    outs, handles = {}, []
    for n in convs:
        handles.append(find_layer(model, n).register_forward_hook(lambda m, a, o, n=n: outs.__setitem__(n, o)))
    was = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.enable_grad(), torch.autocast(device.type, enabled=False):
            logit = model(task.prepare(seen[None].to(device)))[0, target].float()
            if not logit.requires_grad:  # every weight frozen and no input gradient: no path to follow
                return {}
            grads = torch.autograd.grad(logit, [outs[n] for n in convs], allow_unused=True)
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return {n: (outs[n].detach()[0] * g[0]).float().sum((1, 2)).cpu() for n, g in zip(convs, grads) if g is not None}


def _map_json(m: Tensor, channel: int) -> dict:
    lo, hi = float(m.min()), float(m.max())
    return {"channel": channel, "min": lo, "max": hi, "image": render.gray_png(m.numpy(), lo, hi)}


# ---------------------------------------------------------------------- one unit, written out
def unit(lm, seen: Tensor, rows: list[dict], layer: str, channel: int, y: int | None = None,
         x: int | None = None) -> dict:
    """How value (``channel``, ``y``, ``x``) of conv or max-pool ``layer``'s map was computed for
    ``seen`` (default: the map's most active position): the input patch under the kernel per input
    channel, the element-wise products' sums, the bias, the total (and the layer's own output there,
    which it equals); then each BatchNorm and ReLU that follows at the same unit."""
    model = lm.model
    module = find_layer(model, layer)
    if not isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
        raise CnnlabError(f"layer {layer!r} is a {type(module).__name__}; a unit's arithmetic is shown for "
                          f"conv and max-pool layers")
    names = [r["name"] for r in rows]
    after = _followers(model, names, layer) if isinstance(module, nn.Conv2d) else []
    outs, ins, _ = _forward(lm, seen, [layer, *after], [layer])
    missing = [n for n in (layer, *after) if n not in outs]
    if layer in missing:
        raise CnnlabError(f"layer {layer!r} runs more than once per image (one module used in several places): "
                          f"no single map is its")
    after = after[:after.index(missing[0])] if missing else after  # the story stops at a shared module
    out, inp = outs[layer], ins[layer]  # (C', h', w'), (C, H, W)
    if not 0 <= channel < out.shape[0]:
        raise CnnlabError(f"channel {channel}: layer {layer!r} has channels 0..{out.shape[0] - 1}")
    if y is None or x is None:
        y, x = divmod(int(out[channel].argmax()), out.shape[2])
    if not (0 <= y < out.shape[1] and 0 <= x < out.shape[2]):
        raise CnnlabError(f"position ({y}, {x}): layer {layer!r}'s maps are {out.shape[1]}x{out.shape[2]}")
    r = {"layer": layer, "label": render.readable(layer), "type": type(module).__name__, "channel": channel,
         "y": y, "x": x, "shape": list(out.shape), "input_shape": list(inp.shape), "output": float(out[channel, y, x]),
         "map": _map_json(out[channel], channel)}
    if isinstance(module, nn.MaxPool2d):
        return {**r, **_pool_window(module, inp, channel, y, x)}
    r.update(_conv_patch(module, inp, channel, y, x))
    value, steps = r["output"], []
    for name in after:
        m, v = find_layer(model, name), float(outs[name][channel, y, x])
        if isinstance(m, nn.BatchNorm2d):
            mean, var = float(m.running_mean[channel]), float(m.running_var[channel])
            gamma = float(m.weight.detach()[channel]) if m.weight is not None else 1.0
            beta = float(m.bias.detach()[channel]) if m.bias is not None else 0.0
            steps.append({"name": name, "label": render.readable(name), "type": "BatchNorm2d", "input": value,
                          "mean": mean, "var": var, "eps": m.eps, "gamma": gamma, "beta": beta, "value": v})
        else:
            steps.append({"name": name, "label": render.readable(name), "type": type(m).__name__, "input": value,
                          "value": v})
        value = v
    r["after"] = steps
    return r


def _followers(model: nn.Module, names: list[str], layer: str) -> list[str]:
    """The BatchNorms and ReLUs right after ``layer`` (in the summary's order), up to anything else."""
    modules, found = dict(model.named_modules()), []
    for name in names[names.index(layer) + 1:] if layer in names else []:
        if not isinstance(modules.get(name), FOLLOW):
            break
        found.append(name)
    return found


def _conv_patch(conv: nn.Conv2d, inp: Tensor, c: int, y: int, x: int) -> dict:
    """The kernel of output channel ``c`` over the input patch under output position (y, x)."""
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    if isinstance(conv.padding, str):
        raise CnnlabError(f"a conv with padding={conv.padding!r}: its unit's patch is not written out")
    ph, pw = conv.padding
    # "same" padding done by the layer itself before its conv (EfficientNet's Conv2dStaticSamePadding)
    static = getattr(conv, "static_padding", None)
    left, right, top, bottom = static.padding if isinstance(static, nn.ZeroPad2d) else (0, 0, 0, 0)
    per_group = inp.shape[0] // conv.groups
    first = (c // (conv.out_channels // conv.groups)) * per_group  # this output channel's input channels
    padded = nn.functional.pad(inp[first:first + per_group], (left + pw, right + pw, top + ph, bottom + ph))  # zeros
    rows = torch.arange(kh) * dh + y * sh
    cols = torch.arange(kw) * dw + x * sw
    ph, pw = ph + top, pw + left  # zeros before the input's first row and column
    patch = padded[:, rows][:, :, cols]  # (C/g, kh, kw)
    weight = conv.weight.detach().float().cpu()[c]  # (C/g, kh, kw)
    sums = (patch.double() * weight.double()).sum((1, 2))  # per input channel
    bias = float(conv.bias.detach()[c]) if conv.bias is not None else 0.0
    order = sums.abs().argsort(descending=True)[:MAX_CHANNELS_SHOWN].tolist()  # the biggest contributions first
    return {"kernel": list(conv.kernel_size), "stride": list(conv.stride), "padding": [ph, pw],
            "rows": [int(v) - ph for v in rows], "cols": [int(v) - pw for v in cols],  # in the input's own pixels
            "in_channels": per_group, "first_in_channel": first, "bias": bias,
            "total": float(sums.sum()) + bias,
            "channels": [{"channel": first + i, "patch": patch[i].tolist(), "weights": weight[i].tolist(),
                          "sum": float(sums[i])} for i in order]}


def _pool_window(pool: nn.MaxPool2d, inp: Tensor, c: int, y: int, x: int) -> dict:
    """The max-pool window under output position (y, x) of channel ``c`` and its largest value."""
    k = pool.kernel_size if isinstance(pool.kernel_size, tuple) else (pool.kernel_size,) * 2
    s = pool.stride if isinstance(pool.stride, tuple) else (pool.stride,) * 2
    p = pool.padding if isinstance(pool.padding, tuple) else (pool.padding,) * 2
    y0, x0 = y * s[0] - p[0], x * s[1] - p[1]
    h, w = inp.shape[1:]
    window = [[float(inp[c, i, j]) if 0 <= i < h and 0 <= j < w else -math.inf for j in range(x0, x0 + k[1])]
              for i in range(y0, y0 + k[0])]
    return {"kernel": list(k), "stride": list(s), "rows": list(range(y0, y0 + k[0])),
            "cols": list(range(x0, x0 + k[1])),
            "window": [[v if math.isfinite(v) else None for v in row] for row in window],  # None: padding
            "total": max(v for row in window for v in row)}
