"""CIFAR-10 / CIFAR-100 "python version" pickle batches.

    cifar-10-batches-py/   data_batch_1..5, test_batch, batches.meta (label_names)
    cifar-100-python/      train, test, meta (fine_label_names)  -- fine labels are used

Each batch holds ``data``: (N, 3072) uint8, rows of 1024 red, 1024 green, 1024 blue values,
each plane 32x32 row-major. The pickles are read with an unpickler that only rebuilds numpy
arrays, so a malicious file cannot run code.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.base import TensorImages
from cnnlab.errors import CnnlabError

CIFAR10_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
CIFAR100_FILES = {"train": ["train"], "test": ["test"]}

_ALLOWED = {  # (module, name) that a CIFAR pickle may rebuild: numpy arrays and nothing else
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        module = module.replace("numpy.core", "numpy._core", 1)  # pickles from numpy < 2
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_batch(path: Path) -> dict:
    """One CIFAR pickle as a dict with str keys."""
    try:
        with open(path, "rb") as f:
            batch = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError) as e:
        raise CnnlabError(f"{path}: not a CIFAR python pickle ({e})") from None
    if not isinstance(batch, dict):
        raise CnnlabError(f"{path}: not a CIFAR python pickle (holds a {type(batch).__name__})")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def cifar_variant(folder: Path) -> str | None:
    """"cifar10", "cifar100" or None, from the files in ``folder``."""
    if (folder / "batches.meta").is_file():
        return "cifar10"
    if (folder / "meta").is_file() and ((folder / "train").is_file() or (folder / "test").is_file()):
        return "cifar100"
    return None


def load_cifar_folder(folder: str | Path, part: str, name: str = "") -> TensorImages:
    """Official part ``train`` or ``test`` of a CIFAR pickle folder as uint8 (N, 3, 32, 32)."""
    folder = Path(folder)
    variant = cifar_variant(folder)
    if variant is None:
        raise CnnlabError(f"{folder}: not a CIFAR pickle folder (expected batches.meta with "
                          f"data_batch_1..5 and test_batch, or meta with train and test)")
    files, meta, label_key, names_key = (
        (CIFAR10_FILES, "batches.meta", "labels", "label_names") if variant == "cifar10"
        else (CIFAR100_FILES, "meta", "fine_labels", "fine_label_names"))
    classes = [str(c) for c in read_batch(folder / meta)[names_key]]
    images, labels = [], []
    for file in files[part]:
        path = folder / file
        if not path.is_file():
            raise CnnlabError(f"{folder}: {file} is missing (the {part} split of {variant} needs "
                              f"{', '.join(files[part])})")
        batch = read_batch(path)
        if "data" not in batch or label_key not in batch:
            raise CnnlabError(f"{path}: expected keys 'data' and {label_key!r}, got {sorted(batch)}")
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise CnnlabError(f"{path}: 'data' must be (N, 3072) uint8, got {data.shape}")
        images.append(data.reshape(-1, 3, 32, 32))  # (N, C, H, W)
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    labels = torch.from_numpy(np.concatenate(labels))
    if len(labels) and int(labels.max()) >= len(classes):
        raise CnnlabError(f"{folder}: label {int(labels.max())} but {meta} names {len(classes)} classes")
    return TensorImages(torch.from_numpy(np.concatenate(images)), labels, classes, name)
