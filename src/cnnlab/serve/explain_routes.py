"""The explainer over HTTP: ``/v1/explain`` (feature maps, filters, a CAM, as PNG data URLs),
``/v1/architecture`` (the layers) and ``/v1/inspect`` (one image step by step, for the page)."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from cnnlab import api
from cnnlab.images import read_image
from cnnlab.interpret import overlay
from cnnlab.serve import render
from cnnlab.serve.dependencies import ExplainableInForm, ExplainableInQuery, ServiceUploads
from cnnlab.serve.errors import client_errors
from cnnlab.serve.uploads import HTTPError, request_folder, save_upload

PLOT_LOCK = threading.Lock()  # matplotlib's pyplot keeps global state: one figure writer at a time
METHOD = "^(gradcam|gradcam\\+\\+|saliency)$"
router = APIRouter()


@router.post("/v1/explain", summary="Feature maps layer by layer, first-layer filters and a CAM, as PNGs")
def explain(file: Annotated[UploadFile, File(description="an image file")], served: ExplainableInForm,
            uploads: ServiceUploads,
            method: Annotated[str, Form(pattern=METHOD)] = "gradcam",
            layer: Annotated[str | None, Form(description="CAM layer (default: the last conv layer)")] = None,
            target_class: Annotated[str | None, Form(description="class name or index (default: predicted)")] = None,
            ) -> dict:
    up = uploads.read(file, uploads.limits.max_image_side)
    with request_folder() as tmp:
        path = save_upload(up, tmp)
        with client_errors({str(path): up.name, str(tmp): ""}), served.lock, PLOT_LOCK:
            r = api.explain(served.model, path, tmp / "explain", method=method, layer=layer or None,
                            target_class=target_class or None)
            rows = {row.name: row for row in api.layers(served.model)}
        image = read_image(path, channels=served.task.input_shape[0])
        return {**_explain_json(r, rows, image, served.name), **up.reply()}


@router.get("/v1/architecture", summary="The model's layers: output volume, parameters, receptive field")
def architecture(served: ExplainableInQuery) -> dict:
    with served.lock:
        return served.architecture()


@router.post("/v1/inspect", summary="What the model saw, its top-5, a Grad-CAM, and one conv layer's maps and kernels")
def inspect(file: Annotated[UploadFile, File(description="an image file")], served: ExplainableInForm,
            uploads: ServiceUploads,
            layer: Annotated[str | None, Form(description="a conv layer: its feature maps and kernels")] = None,
            cam_layer: Annotated[str | None, Form(description="CAM layer (default: the last conv layer)")] = None,
            target_class: Annotated[str | None, Form(description="class name or index (default: predicted)")] = None,
            method: Annotated[str, Form(pattern=METHOD)] = "gradcam",
            max_maps: Annotated[int, Form(ge=1, le=256, description="feature maps returned, most active first")] = 32,
            ) -> dict:
    up = uploads.read(file, uploads.limits.max_image_side)
    with client_errors(), served.lock:
        arch = served.architecture()
        if layer and layer not in {r["name"] for r in arch["layers"] if r["conv"]}:
            known = ", ".join(c["name"] for c in arch["cam_layers"])
            raise HTTPError(422, f"layer {layer[:80]!r}: not a conv layer of {served.name!r}; conv layers: {known}")
        r = api.inspect(served.model, up.image, layer=layer or None, cam_layer=cam_layer or None,
                        target_class=target_class or None, method=method)
    return {"model": served.name, "image": up.name, **up.reply(), **_inspect_json(r, arch, layer, max_maps)}


def _explain_json(r: dict, rows: dict, original, model: str) -> dict:
    """api.explain's result as JSON: the CAM overlay, a channel grid per layer, the figures."""
    image = render.fit(original)
    cam = {k: v for k, v in r["cam"].items() if k != "heatmap"}
    heat = r["cam"]["heatmap"]  # float (H, W) in [0, 1] at the image's own size
    layers = []
    for name, fmap in r["feature_maps"].items():
        grid, channels = render.channel_grid(fmap)
        row = rows.get(name)
        layers.append({"name": name, "shape": list(fmap.shape), "channels": channels, "image": grid,
                       "receptive_field": row.receptive_field if row else None, "jump": row.jump if row else None})
    return {"model": model, "image": Path(r["image"]).name, "prediction": r["prediction"],
            "cam": {**cam, "overlay": render.png_data_url(overlay(image, heat)),
                    "heatmap": render.colour_png(render.fit_map(heat), "jet")},
            "layers": layers,
            "figures": {k: render.file_data_url(Path(v)) for k, v in r["files"].items()}}


def _inspect_json(r: dict, arch: dict, layer: str | None, max_maps: int) -> dict:
    """api.inspect's result for the page: PNGs of the input as the model saw it, the CAM over it,
    and (with ``layer``) the most active feature maps, each with its kernel's weights."""
    seen = r["seen"]  # uint8 (C, h, w)
    cam = {k: v for k, v in r["cam"].items() if k != "heatmap"}
    out = {"seen": {"shape": list(seen.shape), "image": render.png_data_url(seen),
                    "normalised": render.denormalised_png(r["normalised"], r["mean"], r["std"]),
                    "mean": r["mean"], "std": r["std"],
                    "range": [float(r["normalised"].min()), float(r["normalised"].max())]},
           "prediction": r["prediction"],
           "cam": {**cam, "label": render.readable(cam["layer"]) if cam["layer"] != "input" else "input",
                   "overlay": render.png_data_url(overlay(seen, r["cam"]["heatmap"])),
                   "heatmap": render.gray_png(r["cam"]["heatmap"], 0.0, 1.0)}}  # 0..1 as grey, for the page to colour
    if layer:
        fmap, weights = r["feature_maps"], r["weights"]  # (C', h', w'), (C', C/groups, k, k)
        row = next(x for x in arch["layers"] if x["name"] == layer)
        order = fmap.mean((1, 2)).topk(min(max_maps, fmap.shape[0])).indices.tolist()
        maps = []
        for c in order:
            w = weights[c]  # (C/groups, k, k)
            maps.append({"channel": c, "min": float(fmap[c].min()), "max": float(fmap[c].max()),
                         "image": render.gray_png(fmap[c].numpy(), float(fmap[c].min()), float(fmap[c].max())),
                         "kernel_sum": w.sum(0).tolist(), "kernel_first": w[:3].tolist(),
                         "in_channels": int(w.shape[0])})
        out["layer"] = {"name": layer, "label": row["label"], "shape": list(fmap.shape), "type": row["type"],
                        "kernel": row["kernel"], "stride": row["stride"],
                        "receptive_field": row["receptive_field"], "jump": row["jump"], "maps": maps}
    return out
