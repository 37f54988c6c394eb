"""Model registry and builders. Importing this package registers every built-in architecture.

    from cnnlab.models import get_model, list_models, summarize, format_summary
    model = get_model("resnet20", num_classes=10)
    print(format_summary(summarize(model, (3, 32, 32))))
"""
from cnnlab.models import airbench, alexnet, efficientnet, googlenet, lecture_cnn, lenet, resnet, vgg  # noqa: F401  (register)
from cnnlab.models import mlp, mobilenet  # noqa: F401,E402  (register)
from cnnlab.models import rcnn, rcnn_classic  # noqa: F401,E402  (register: detection)
from cnnlab.models import deeplab, fcn, unet  # noqa: F401,E402  (register: segmentation)
from cnnlab.models import captioner  # noqa: F401,E402  (register: captioning)
from cnnlab.models.registry import ModelInfo, get_model, list_models, model_info, register_model
from cnnlab.models.summary import LayerRow, format_summary, summarize

__all__ = ["ModelInfo", "LayerRow", "get_model", "list_models", "model_info", "register_model",
           "summarize", "format_summary"]
