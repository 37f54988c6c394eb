"""The onnxruntime Predictor: an exported ONNX classifier that predicts like a ``LoadedModel``.

    model = OnnxModel.from_file("digits.onnx")   # written by ``cnnlab export``
    probs = model.logits(torch.stack([model.read("7.png")])).softmax(1)

The task (classes, normalisation, input shape) comes from the file's ``cnnlab`` metadata, so
the file alone is enough: no checkpoint, no model code, no PyTorch graph.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from cnnlab.deploy.checks import checked_task
from cnnlab.deploy.predictor import model_input
from cnnlab.errors import CnnlabError

METADATA_KEY = "cnnlab"  # ONNX metadata_props key: the task and version export_model writes


@dataclass
class OnnxModel:
    """An onnxruntime session with the task that knows its classes and input format (a ``Predictor``)."""

    session: object                    # onnxruntime.InferenceSession
    task: object
    name: str
    source: str = ""
    device: torch.device = torch.device("cpu")  # onnxruntime runs on the CPU here
    runtime = "onnxruntime"  # what runs it (LoadedModel: pytorch)
    explainable = False      # a graph to run, no PyTorch module: nothing to hook,
    exportable = False       # nothing to export again,
    evaluable = False        # nothing for the task's evaluation to run

    @classmethod
    def from_file(cls, path: str | Path) -> "OnnxModel":
        """Open an ONNX file written by ``export_model``; a clear error for anything else."""
        session = inference_session(path)
        raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if raw is None:
            raise CnnlabError(f"{path}: ONNX model without cnnlab metadata (export it with `cnnlab export`)")
        try:
            meta = json.loads(raw)
        except ValueError as e:
            raise CnnlabError(f"{path}: unreadable cnnlab metadata ({type(e).__name__}: {e})") from None
        if not isinstance(meta, dict):
            raise CnnlabError(f"{path}: unreadable cnnlab metadata (expected a JSON object)")
        task = checked_task(meta.get("task"), path)  # sizes, names and normalisation checked first
        return cls(session, task, meta.get("model", Path(path).stem), str(path))

    def read(self, image: str | Path | Tensor) -> Tensor:
        """An image file (or a uint8 (C, H, W) tensor) as the uint8 (C, H, W) tensor this model takes."""
        return model_input(self.task, image)

    @torch.no_grad()
    def logits(self, images: Tensor) -> Tensor:
        """uint8 (B, C, H, W) -> float logits (B, K), on the CPU."""
        x = self.task.prepare(images.cpu()).contiguous()  # (B, C, H, W) fp32, NCHW as exported
        name = self.session.get_inputs()[0].name
        return torch.from_numpy(self.session.run(None, {name: x.numpy()})[0])


def inference_session(path: str | Path):
    """An onnxruntime CPU session using PyTorch's thread count, so both honour one setting."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise CnnlabError(f"{path}: running ONNX models needs onnxruntime (pip install onnxruntime)") from None
    if not Path(path).is_file():
        raise CnnlabError(f"{path}: ONNX model not found")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # a foreign or truncated file: say which and why, in one line
        raise CnnlabError(f"{path}: not a readable ONNX model ({str(e).splitlines()[0][:200]})") from None
