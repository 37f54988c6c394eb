"""The engine: the one training loop, its config, checkpoints and memory budgets (loading a
trained model and export are ``cnnlab.deploy``'s, a layer above).

    from cnnlab.engine import TrainConfig, fit
    run = fit(TrainConfig(data="digits", epochs=2))

Names load on first use (PEP 562), so ``cnnlab.engine.config`` alone does not import torch.
"""
import importlib

_EXPORTS = {
    "TrainConfig": "config", "fit": "trainer", "RunResult": "trainer",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cnnlab.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cnnlab.engine.{_EXPORTS[name]}"), name)
