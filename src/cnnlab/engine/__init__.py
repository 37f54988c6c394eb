"""The engine: the one training loop, its config, checkpoints, inference and export.

    from cnnlab.engine import TrainConfig, fit, LoadedModel
    run = fit(TrainConfig(data="digits", epochs=2))

Names load on first use (PEP 562), so ``cnnlab.engine.config`` alone does not import torch.
"""
import importlib

_EXPORTS = {
    "TrainConfig": "config", "fit": "trainer", "RunResult": "trainer", "LoadedModel": "inference",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint", "export_model": "export",
    "OnnxModel": "onnx_model",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cnnlab.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cnnlab.engine.{_EXPORTS[name]}"), name)
