"""cnnlab: convolutional neural networks for computer vision, from pixels to predictions."""
from cnnlab._version import __version__

from cnnlab.api import (convolve, data_info, evaluate, explain, explain_convolution, export, load,  # noqa: E402
                        model_summary, pixels, predict, train, xo)
from cnnlab.data import list_datasets, load_dataset  # noqa: E402
from cnnlab.errors import CnnlabError  # noqa: E402
from cnnlab.models import get_model, list_models  # noqa: E402

__all__ = ["train", "evaluate", "predict", "load", "export", "pixels", "data_info", "model_summary",
           "convolve", "explain_convolution", "explain", "xo",
           "get_model", "list_models", "list_datasets", "load_dataset", "CnnlabError", "__version__"]
