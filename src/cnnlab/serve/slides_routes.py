"""The lecture's first slides over HTTP, no model needed: ``/v1/pixels`` (an image as the numbers a
computer sees, the Lincoln slide) and ``/v1/xo`` (the "X or X?" case study: two 9x9 images of an X,
three 3x3 filters, their feature maps, ReLU and 2x2 max pooling, from ``api.xo``)."""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, UploadFile

from cnnlab import api
from cnnlab.serve import render
from cnnlab.serve.dependencies import ServiceUploads
from cnnlab.serve.explain_routes import PLOT_LOCK

router = APIRouter()


@router.post("/v1/pixels", summary="The image as numbers: its pixels, decoded as predict decodes them, as a "
                                   "lossless PNG")
def pixels(file: Annotated[UploadFile, File(description="an image file")], uploads: ServiceUploads) -> dict:
    up = uploads.read(file, uploads.limits.max_convolve_side)  # (C, H, W) uint8; large images scaled down
    c, h, w = up.image.shape
    return {"image": up.name, "shape": [h, w, c], "channels": ["grey"] if c == 1 else ["R", "G", "B", "A"][:c],
            "pixels": render.png_data_url(up.image), **up.reply()}


@router.get("/v1/xo", summary="\"X or X?\": the lecture's two X images, three filters, feature maps, ReLU, pooling")
def xo() -> dict:
    return _case_study()


@functools.lru_cache(maxsize=1)
def _case_study() -> dict:
    """``api.xo``'s case study (no training) as JSON; the same numbers every time, so computed once."""
    with tempfile.TemporaryDirectory(prefix="cnnlab-xo-") as tmp, PLOT_LOCK:
        s = api.xo(out=Path(tmp) / "xo", train=False)["case_study"]
    as_list = lambda a: np.asarray(a, dtype=float).round(6).tolist()  # noqa: E731
    return {"images": {k: as_list(v) for k, v in s["images"].items()},
            "filters": {k: as_list(v) for k, v in s["filters"].items()},
            **{key: {i: {f: as_list(m) for f, m in maps.items()} for i, maps in s[key].items()}
               for key in ("feature_maps", "relu", "pooled")},
            "report": s["report"]}
