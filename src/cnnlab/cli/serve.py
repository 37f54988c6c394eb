"""``cnnlab serve``: an HTTP service and web page for checkpoints (FastAPI and uvicorn load only here)."""
from __future__ import annotations

import argparse

from cnnlab.errors import CnnlabError


def add(sub) -> argparse.ArgumentParser:
    s = sub.add_parser("serve", help="an HTTP service and web page for checkpoints: predict, explain, convolve")
    s.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT",
                   help="a checkpoint (.pt) or exported .safetensors or .onnx, optionally NAME=PATH; several serve side by side")
    s.add_argument("--model", action="append", help="a registered model name to serve with --pretrained; repeat")
    s.add_argument("--pretrained", action="store_true", help="use the --model's ImageNet weights (EfficientNet-Lite0: offline; torchvision models: the torch hub cache)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--max-upload-mb", type=float, default=20, help="largest request body in MiB (413 above)")
    s.add_argument("--max-pixels", type=int, default=40_000_000, help="largest decoded image, width*height (413 above)")
    s.add_argument("--runtime", default="pytorch", choices=["pytorch", "onnxruntime"],
                   help="predict with PyTorch fp32, or export classifiers to ONNX at start (parity-checked) "
                        "and predict with onnxruntime (faster on CPUs; explain still uses PyTorch)")
    s.add_argument("--device", default="auto")
    return s


def run(a) -> int:
    from cnnlab.serve import run as serve  # FastAPI and uvicorn load only for this command
    from cnnlab.serve.uploads import Limits

    if a.model and not a.pretrained:
        raise CnnlabError("serve: --model NAME needs --pretrained (or give a CHECKPOINT)")
    limits = Limits(max_upload_bytes=round(a.max_upload_mb * 2**20), max_pixels=a.max_pixels)
    serve(a.checkpoints, a.model or [], host=a.host, port=a.port, limits=limits, device=a.device,
          runtime=a.runtime)
    return 0
