"""The network overview over HTTP (CNN Explainer's views, for the served classifier): ``/v1/network``
(every layer's most active maps for this image, left to right, and the softmax) and ``/v1/unit``
(one value of a conv or max-pool map, its arithmetic written out, then BatchNorm and ReLU)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from cnnlab.serve import network
from cnnlab.serve.dependencies import ExplainableInForm, ServiceUploads
from cnnlab.serve.errors import client_errors
from cnnlab.serve.uploads import HTTPError

router = APIRouter()


@router.post("/v1/network", summary="Every conv, activation and pool layer's maps for this image (the predicted "
                                     "class's path), and the softmax")
def network_overview(file: Annotated[UploadFile, File(description="an image file")], served: ExplainableInForm,
                     uploads: ServiceUploads,
                     maps: Annotated[int, Form(ge=1, le=16, description="activation maps per layer")] = 4,
                     order: Annotated[str, Form(pattern="^(class|active)$", description=(
                         "a conv's maps: 'class' (the channels adding most to the predicted class: its path) "
                         "or 'active' (the most active)"))] = "class") -> dict:
    up = uploads.read(file, uploads.limits.max_image_side)
    with client_errors(), served.lock:
        rows = served.architecture()["layers"]
        r = network.overview(served.model, served.model.read(up.image), rows, maps, order=order)
    return {"model": served.name, "image": up.name, **up.reply(), **r}


@router.post("/v1/unit", summary="One value of a conv or max-pool map for this image: the kernel over the input "
                                 "patch, the sum written out, then BatchNorm and ReLU")
def unit(file: Annotated[UploadFile, File(description="an image file")], served: ExplainableInForm,
         uploads: ServiceUploads,
         layer: Annotated[str, Form(description="a conv or max-pool layer")],
         channel: Annotated[int, Form(ge=0, description="the output channel")],
         y: Annotated[int | None, Form(ge=0, description="row in the map (default: its most active unit)")] = None,
         x: Annotated[int | None, Form(ge=0, description="column in the map")] = None) -> dict:
    up = uploads.read(file, uploads.limits.max_image_side)
    with client_errors(), served.lock:
        rows = served.architecture()["layers"]
        if layer not in {r["name"] for r in rows}:
            raise HTTPError(422, f"layer {layer[:80]!r}: not a layer of {served.name!r}")
        r = network.unit(served.model, served.model.read(up.image), rows, layer, channel, y, x)
    return {"model": served.name, "image": up.name, **up.reply(), **r}
