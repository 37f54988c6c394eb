"""Datasets: built-in (digits, xo, shapes), real formats (IDX, CIFAR pickles, image folders)."""
from cnnlab.data.base import FileImages, TensorImages
from cnnlab.data.registry import list_datasets, load_dataset, register_dataset

# Importing these modules registers their datasets.
from cnnlab.data import digits, xo, shapes, named, paths  # noqa: E402,F401

__all__ = ["FileImages", "TensorImages", "list_datasets", "load_dataset", "register_dataset"]
