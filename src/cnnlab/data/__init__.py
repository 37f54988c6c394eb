"""Datasets: built-in (digits, xo, shapes), real formats (IDX, CIFAR pickles, image folders)."""
from cnnlab.data.base import FileImages, TensorImages
from cnnlab.data.registry import list_datasets, load_dataset, register_dataset

# Importing these modules registers their datasets.
from cnnlab.data import digits, xo, shapes, named, paths  # noqa: E402,F401
from cnnlab.data import detect_shapes, box_formats  # noqa: E402,F401  (detection)
from cnnlab.data import segment_shapes, seg_folders  # noqa: E402,F401  (segmentation)
from cnnlab.data import caption_shapes, captions  # noqa: E402,F401  (captioning)

__all__ = ["FileImages", "TensorImages", "list_datasets", "load_dataset", "register_dataset"]
