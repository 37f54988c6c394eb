"""Hand-made kernels over HTTP: ``/v1/convolve`` slides them over the image in grey (no model)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from cnnlab import api
from cnnlab.interpret import parse_kernel
from cnnlab.serve import render
from cnnlab.serve.dependencies import ServiceUploads
from cnnlab.serve.errors import client_errors
from cnnlab.serve.uploads import HTTPError

router = APIRouter()


@router.post("/v1/convolve", summary="Slide hand-made kernels (names or matrices) over the image in grey")
def convolve(file: Annotated[UploadFile, File(description="an image file")], uploads: ServiceUploads,
             kernel: Annotated[list[str], Form(description="a kernel name or 'a,b,c;d,e,f;g,h,i'; repeat")] = ["edge"],  # noqa: B006
             stride: Annotated[int, Form(ge=1, le=16)] = 1,
             padding: Annotated[int | None, Form(ge=0, le=16, description="zeros per side (default: same size)")] = None,
             ) -> dict:
    limits = uploads.limits
    if len(kernel) > limits.max_kernels:
        raise HTTPError(422, f"kernel: {len(kernel)} kernels; at most {limits.max_kernels} per request")
    with client_errors():
        for k in kernel:
            if max(parse_kernel(k).shape) > limits.max_kernel_side:
                raise HTTPError(422, f"kernel {k[:40]!r}: larger than {limits.max_kernel_side}x"
                                     f"{limits.max_kernel_side}")
    up = uploads.read(file, limits.max_convolve_side, channels=1)  # image: (1, h, w) uint8
    with client_errors():
        r = api.convolve(up.image.numpy(), kernel, stride=stride, padding=padding, out=None)
    return {"image": up.name, "stride": r["stride"], "padding": r["padding"],
            "input": {"shape": list(r["input"].shape), "image": render.gray_png(r["input"], 0.0, 1.0),
                      "resized_from": up.resized["from"] if up.resized else None},
            "feature_maps": [{"kernel": m["kernel"], "weights": m["weights"].tolist(),
                              "shape": list(m["size"]), "min": float(m["feature_map"].min()),
                              "max": float(m["feature_map"].max()), "image": render.gray_png(m["feature_map"])}
                             for m in r["feature_maps"]]}
