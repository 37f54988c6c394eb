"""Runtime helpers below the tasks: the device, the precision policy, distributed reductions, and
the CPU thread policy (applied before torch loads).

Tasks use these for their metrics (summed over processes) without reaching up into the engine.
Names load on first use (PEP 562): ``runtime.threads`` must run before torch is imported.
"""
import importlib

_EXPORTS = {"autocast": "device", "pick_device": "device", "use_bf16": "device", "Dist": "distributed",
            "all_reduce_sum": "distributed", "apply_thread_policy": "threads"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cnnlab.runtime' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cnnlab.runtime.{_EXPORTS[name]}"), name)
