"""CIFAR-10 / CIFAR-100 "python version" pickle batches.

    cifar-10-batches-py/   data_batch_1..5, test_batch, batches.meta (label_names)
    cifar-100-python/      train, test, meta (fine_label_names)  -- fine labels are used

Each batch holds ``data``: (N, 3072) uint8, rows of 1024 red, 1024 green, 1024 blue values,
each plane 32x32 row-major. The pickles are read with an unpickler that only rebuilds numpy
arrays, so a malicious file cannot run code; before that, a scan of the opcodes (which runs
nothing) refuses memo indices that would make the unpickler allocate gigabytes.
"""
from __future__ import annotations

import io
import pickle
import pickletools
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.base import TensorImages
from cnnlab.errors import CnnlabError, clean

CIFAR10_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
CIFAR100_FILES = {"train": ["train"], "test": ["test"]}
MAX_PICKLE_BYTES = 1 << 30  # bytes one batch file may have (CIFAR-100's train file: ~160 MB)

_ALLOWED = {  # (module, name) that a CIFAR pickle may rebuild: numpy arrays and nothing else
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        module = module.replace("numpy.core", "numpy._core", 1)  # pickles from numpy < 2
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_batch(path: Path) -> dict:
    """One CIFAR pickle as a dict with str keys."""
    name = clean(path)
    raw = _read_file(Path(path), name)
    try:
        _check_memo(raw)
        # latin1: Python 2's str (CIFAR's keys, names and array bytes) arrives as str
        batch = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, OverflowError, MemoryError) as e:
        raise CnnlabError(f"{name}: not a CIFAR python pickle ({clean(e)})") from None
    if not isinstance(batch, dict):
        raise CnnlabError(f"{name}: not a CIFAR python pickle (holds a {type(batch).__name__})")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in batch.items()}


def _read_file(path: Path, name: str) -> bytes:
    """The bytes of a regular file of at most MAX_PICKLE_BYTES (a FIFO is never opened)."""
    if not path.is_file():
        raise CnnlabError(f"{name}: no such file (or not a regular file)")
    size = path.stat().st_size
    if size > MAX_PICKLE_BYTES:
        raise CnnlabError(f"{name}: {size:,} bytes, more than a CIFAR batch file holds "
                          f"(limit {MAX_PICKLE_BYTES:,})")
    try:
        return path.read_bytes()
    except OSError as e:
        raise CnnlabError(f"{name}: cannot read ({clean(e.strerror or e)})") from None


def _check_memo(raw: bytes) -> None:
    """Refuse memo indices past the opcode count: CPython's unpickler grows its memo to twice
    the index, so 12 bytes asking for index 2**32-1 would allocate 64 GiB."""
    for n, (op, arg, _) in enumerate(pickletools.genops(raw)):
        if op.name in _PUTS and arg > n:
            raise pickle.UnpicklingError(f"memo index {arg:,} at opcode {n:,}")


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
        raise CnnlabError(f"{clean(folder)}: not a CIFAR pickle folder (expected batches.meta with "
                          f"data_batch_1..5 and test_batch, or meta with train and test)")
    files, meta, label_key, names_key = (
        (CIFAR10_FILES, "batches.meta", "labels", "label_names") if variant == "cifar10"
        else (CIFAR100_FILES, "meta", "fine_labels", "fine_label_names"))
    classes = _class_names(read_batch(folder / meta), names_key, clean(folder / meta))
    images, labels = [], []
    for file in files[part]:
        path = folder / file
        if not path.is_file():
            raise CnnlabError(f"{clean(folder)}: {file} is missing (the {part} split of {variant} "
                              f"needs {', '.join(files[part])})")
        data, batch_labels = _images_and_labels(read_batch(path), label_key, clean(path))
        images.append(data.reshape(-1, 3, 32, 32))  # (N, C, H, W)
        labels.append(batch_labels)
    labels = torch.from_numpy(np.concatenate(labels))
    if len(labels) and int(labels.max()) >= len(classes):
        raise CnnlabError(f"{clean(folder)}: label {int(labels.max())} but {meta} names "
                          f"{len(classes)} classes")
    return TensorImages(torch.from_numpy(np.concatenate(images)), labels, classes, name)


def _class_names(meta: dict, key: str, name: str) -> list[str]:
    """The class names under ``key``: a list of strings (bytes are decoded as latin1)."""
    names = meta.get(key)
    if not isinstance(names, (list, tuple)) or not all(isinstance(c, (str, bytes)) for c in names):
        raise CnnlabError(f"{name}: expected {key!r}, a list of class names; got "
                          f"{type(names).__name__ if key in meta else f'keys {sorted(meta)}'}")
    return [clean(c.decode("latin1") if isinstance(c, bytes) else c) for c in names]


def _images_and_labels(batch: dict, key: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``data`` as (N, 3072) uint8 and ``key`` as N class indices >= 0, or a CnnlabError."""
    if "data" not in batch or key not in batch:
        raise CnnlabError(f"{name}: expected keys 'data' and {key!r}, got {sorted(batch)}")
    data, labels = batch["data"], _int_labels(batch[key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        shape = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise CnnlabError(f"{name}: 'data' must be (N, 3072) uint8, got {shape}")
    if labels is None:
        raise CnnlabError(f"{name}: {key!r} must be a list of integer class indices")
    if len(labels) != len(data):
        raise CnnlabError(f"{name}: {len(data)} images but {len(labels)} {key}")
    if len(labels) and labels.min() < 0:
        raise CnnlabError(f"{name}: label {labels.min()} is negative; expected class indices 0, 1, ...")
    return data, labels


def _int_labels(labels) -> np.ndarray | None:
    """A list or 1-D array of integers as int64, else None (strings, floats, nesting...)."""
    if isinstance(labels, np.ndarray):
        ok = labels.ndim == 1 and labels.dtype.kind in "iu"
    else:
        ok = isinstance(labels, (list, tuple)) and all(
            isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in labels)
    try:
        return np.asarray(labels, dtype=np.int64) if ok else None
    except OverflowError:  # an integer beyond int64
        return None
