"""Datasets: the core (registry, splits, loader, augmentation, layouts, `data check`) in this folder;
readers of formats on disk in ``formats/``; built-in synthetic sets in ``builtin/``."""
from cnnlab.data.base import FileImages, TensorImages
from cnnlab.data.registry import list_datasets, load_dataset, register_dataset

# Importing these modules registers their datasets, path loaders and layout sniffers.
from cnnlab.data.builtin import digits, xo, shapes  # noqa: E402,F401
from cnnlab.data.builtin import detect_shapes, segment_shapes, caption_shapes  # noqa: E402,F401
from cnnlab.data.formats import named_sets, classification  # noqa: E402,F401  (classification)
from cnnlab.data.formats import boxes  # noqa: E402,F401  (detection)
from cnnlab.data.formats import mask_folders  # noqa: E402,F401  (segmentation)
from cnnlab.data.formats import captions  # noqa: E402,F401  (captioning)

__all__ = ["FileImages", "TensorImages", "list_datasets", "load_dataset", "register_dataset"]
