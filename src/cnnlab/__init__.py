"""cnnlab: convolutional neural networks for computer vision, from pixels to predictions.

    import cnnlab
    run = cnnlab.train(data="digits", epochs=8, out="runs/digits")

The public functions load on first use (PEP 562), so ``import cnnlab`` and the command line
start at once; torch is imported by the first function that needs it. Importing changes nothing
in the process: the thread policy is applied when a command or a training run starts.
"""
import importlib
import importlib.util

from cnnlab._version import __version__
from cnnlab.errors import CnnlabError

_EXPORTS = {  # name -> the module that defines it
    **dict.fromkeys(["train", "evaluate", "predict", "predict_video", "load", "export", "pixels", "data_info", "check_data", "model_summary",
                     "convolve", "explain_convolution", "explain", "xo", "experiment", "detect_faces"], "cnnlab.api"),
    "get_model": "cnnlab.models", "list_models": "cnnlab.models",
    "list_datasets": "cnnlab.data", "load_dataset": "cnnlab.data",
}
__all__ = [*_EXPORTS, "CnnlabError", "__version__"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        if not name.startswith("_") and importlib.util.find_spec(f"cnnlab.{name}"):
            return importlib.import_module(f"cnnlab.{name}")  # a subpackage: cnnlab.api, cnnlab.models, ...
        raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
