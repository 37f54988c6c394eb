"""Predictions over HTTP: ``/v1/predict`` (the task's own JSON, through ``api.predict``) and
``/v1/mask`` (a segmentation's class ids and their probabilities as PNGs at the image's size,
and with a ground-truth mask uploaded too, this image's per-class IoU)."""
from __future__ import annotations

import dataclasses
import math
from typing import Annotated

import torch
from fastapi import APIRouter, Depends, File, UploadFile

from cnnlab import api
from cnnlab.images import resize
from cnnlab.serve import render
from cnnlab.serve.dependencies import ModelInForm, ServiceUploads, predict_options
from cnnlab.serve.errors import client_errors
from cnnlab.serve.truth import truth_iou
from cnnlab.serve.uploads import HTTPError, request_folder, save_upload, scrub

router = APIRouter()


@router.post("/v1/predict", summary="The task's prediction for one image (top-k, boxes, mask, caption)")
def predict(file: Annotated[UploadFile, File(description="an image file")], served: ModelInForm,
            opts: Annotated[dict, Depends(predict_options)], uploads: ServiceUploads) -> dict:
    up = uploads.read(file, uploads.limits.max_image_side)
    with request_folder() as tmp:
        path = save_upload(up, tmp)
        names = {str(path): up.name, str(tmp): ""}
        if "out" in {f.name for f in dataclasses.fields(served.task.Options)}:
            opts["out"] = str(tmp / "out")  # a task that writes figures writes them here
        with client_errors(names), served.lock:
            result = api.predict(served.predictor, [path], **opts)[0]
        if "error" in result:  # decoded once already; the task could still not read it
            raise HTTPError(415, scrub(result["error"], names))
        if not _finite(result):  # never a 200 whose probabilities are null
            raise HTTPError(500, f"model {served.name!r} computed NaN or infinite scores for this image")
        return {"model": served.name, "task": served.task.name,
                **render.jsonable(result, {str(path): up.name}, tmp), **up.reply()}


@router.post("/v1/mask", summary="Segmentation: each pixel's class id and its probability as grey PNGs at the "
                                  "image's size; with a ground-truth mask, this image's per-class IoU")
def mask(file: Annotated[UploadFile, File(description="an image file")], served: ModelInForm,
         uploads: ServiceUploads,
         truth: Annotated[UploadFile | None, File(description="optional: the image's ground-truth mask, a PNG of "
                                                              "class ids (or the classes' colours)")] = None) -> dict:
    up = uploads.read(file, uploads.limits.max_image_side, channels=served.task.input_shape[0])  # (C, H, W) uint8
    with client_errors(), served.lock:
        scores = served.predictor.logits(resize(up.image, served.task.input_shape[1:])[None])
    if scores.dim() != 4:  # (1, K, h, w): a score per class per pixel, as predict's for segmentation
        raise HTTPError(422, f"model {served.name!r}: a mask needs a segmentation model; this is a "
                             f"{served.task.name} model")
    scores = torch.nn.functional.interpolate(scores.float(), size=up.image.shape[-2:], mode="bilinear",
                                             align_corners=False)  # back to the image's size, as predict does
    prob, ids = scores[0].softmax(0).max(0)  # (H, W) each pixel's class and that class's probability
    ids = ids.cpu()
    reply = {"model": served.name, "image": up.name, "size": list(ids.shape), "classes": list(served.task.classes),
             "colors": render.jsonable(served.task.colors), "mask": render.png_data_url(ids.to(torch.uint8)[None]),
             "probability": render.gray_png(prob.cpu().numpy(), 0.0, 1.0), **up.reply()}
    if truth is not None:
        reply["truth"] = truth_iou(truth, ids, served.task, uploads.limits, up.name)
    return reply


def _finite(value) -> bool:
    """No NaN or infinity anywhere in a result (numbers, lists, dicts, tensors and arrays)."""
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return bool(torch.isfinite(value).all())
    return True
