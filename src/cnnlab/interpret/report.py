"""Open up a trained model on one image: prediction, feature maps, filters, a CAM, the hierarchy.

    lm = LoadedModel.from_checkpoint("runs/shapes/best.pt")
    result = explain_image(lm, "cat.png", "explain/", method="gradcam", dataset="shapes")
    result["files"]   # feature_maps.png, filters.png, cam_gradcam.png, hierarchy.png

This backs ``cnnlab explain`` and ``cnnlab.explain``.
"""
from __future__ import annotations

from pathlib import Path

from cnnlab.data import load_dataset
from cnnlab.errors import CnnlabError
from cnnlab.interpret.cams import cam, plot_cam
from cnnlab.interpret.features import (conv_layers, feature_maps, first_layer_filters, pick_layers,
                                     plot_feature_maps, plot_filters, plot_top_patches, top_patches)
from cnnlab.images import read_image
from cnnlab.models.summary import summarize

MAP_LAYERS = 6  # conv layers shown in feature_maps.png, spread from first to last


def explain_image(loaded_model, image_path: str | Path, out_dir: str | Path, method: str = "gradcam",
                  layer: str | None = None, target_class: int | str | None = None, dataset=None,
                  topk: int = 5) -> dict:
    """Write feature_maps.png, filters.png, cam_<method>.png (and hierarchy.png when ``dataset``,
    a dataset or its name/path, is given) into ``out_dir``.

    Returns ``{"image", "prediction": [{"class", "prob"}] (top-k), "cam": {"heatmap" (H, W),
    "method", "class", "class_index", "prob", "layer"}, "feature_maps": {layer: (C, h, w)},
    "filters": (O, C, k, k), "hierarchy": [LayerPatches] or None, "files": {name: path}}``.
    """
    lm, out = loaded_model, Path(out_dir)
    model, task = lm.model, lm.task
    original = read_image(image_path, channels=task.input_shape[0])  # (C, H, W) as the file is
    seen = lm.read(original)  # (C, h, w) at the model's input size: what predict feeds the model
    probs = lm.logits(seen[None]).softmax(1)[0].cpu()
    values, index = probs.topk(min(topk, len(probs)))
    prediction = [{"class": task.classes[i], "prob": float(v)} for v, i in zip(values, index.tolist())]

    rows = summarize(model, task.input_shape)
    maps = feature_maps(model, task, seen, pick_layers([n for n, _ in conv_layers(model)], MAP_LAYERS))
    filters = first_layer_filters(model)
    heat, info = cam(model, task, seen, method=method, target_class=target_class, layer=layer,
                     size=tuple(original.shape[-2:]))
    files = {"feature_maps": plot_feature_maps(maps, rows, out / "feature_maps.png", image=seen),
             "filters": plot_filters(filters, out / "filters.png"),
             "cam": plot_cam(original, heat, info, out / f"cam_{method}.png")}
    hierarchy = None
    if dataset is not None:
        data = load_dataset(dataset, "val") if isinstance(dataset, (str, Path)) else dataset
        hierarchy = top_patches(model, task, data, layer_info=rows)
        files["hierarchy"] = plot_top_patches(hierarchy, out / "hierarchy.png")
    return {"image": str(image_path), "prediction": prediction, "cam": {"heatmap": heat, **info},
            "feature_maps": maps, "filters": filters, "hierarchy": hierarchy,
            "files": {k: str(v) for k, v in files.items()}}


def inspect_image(loaded_model, image, layer: str | None = None, cam_layer: str | None = None,
                  target_class: int | str | None = None, method: str = "gradcam", topk: int = 5) -> dict:
    """One image through a classifier, step by step, for front ends that draw it (the web page).

    ``image``: a file or uint8 (C, H, W) tensor, read and resized exactly as predict does. Returns
    ``{"seen": uint8 (C, h, w) (the input after resizing), "normalised": float (C, h, w) (what the
    first layer gets), "mean", "std", "prediction": top-k, "cam": {"heatmap" (h, w), "method",
    "class", "class_index", "prob", "layer"}}`` and, given a conv ``layer``, ``"feature_maps"``
    (float (C', h', w')) and ``"weights"`` (its kernels, float (C', C/groups, k, k)).
    """
    from cnnlab.interpret.features import find_layer

    lm, model, task = loaded_model, loaded_model.model, loaded_model.task
    seen = lm.read(image)  # (C, h, w) uint8: what predict feeds the model
    probs = lm.logits(seen[None]).softmax(1)[0].cpu()
    values, index = probs.topk(min(topk, len(probs)))
    prediction = [{"class": task.classes[i], "prob": float(v)} for v, i in zip(values, index.tolist())]
    normalised = task.prepare(seen[None].to(lm.device))[0].float().cpu().contiguous()  # (C, h, w)
    heat, info = cam(model, task, seen, method=method, target_class=target_class, layer=cam_layer)
    result = {"seen": seen.cpu(), "normalised": normalised, "mean": list(getattr(task, "mean", [])),
              "std": list(getattr(task, "std", [])), "prediction": prediction, "cam": {"heatmap": heat, **info}}
    if layer:
        module = find_layer(model, layer)
        weight = getattr(module, "weight", None)
        if not (hasattr(module, "kernel_size") and weight is not None and weight.dim() == 4):
            raise CnnlabError(f"layer {layer!r} is a {type(module).__name__}, not a conv layer with kernels")
        result["feature_maps"] = feature_maps(model, task, seen, [layer])[layer]
        result["weights"] = weight.detach().float().cpu()
    return result
