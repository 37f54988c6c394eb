"""Deployment: a trained model loaded as a ``Predictor`` (eager PyTorch or onnxruntime), and export.

    from cnnlab.deploy import LoadedModel, export_model
    lm = LoadedModel.from_checkpoint("runs/digits/best.pt")     # or OnnxModel.from_file("x.onnx")
    export_model(lm, "digits.onnx")                             # parity-checked against PyTorch

Above the tasks and the engine (it rebuilds a task's model from a checkpoint); the engine never
imports it. Names load on first use (PEP 562), so ``import cnnlab.deploy`` does not import torch.
"""
import importlib

_EXPORTS = {
    "Predictor": "predictor", "LoadedModel": "pytorch_model", "OnnxModel": "onnx_model",
    "export_model": "export", "save_weights": "weights_file", "load_weights": "weights_file",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cnnlab.deploy' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cnnlab.deploy.{_EXPORTS[name]}"), name)
