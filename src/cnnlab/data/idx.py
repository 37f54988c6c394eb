"""MNIST-family IDX files (MNIST, Fashion-MNIST, KMNIST...), raw or gzipped.

    train = load_idx_folder("/usr/share/datasets/fashion-mnist", "train")   # TensorImages (N, 1, 28, 28)

IDX layout: a 4-byte magic number ``0x00 0x00 <type> <ndim>``, ``ndim`` big-endian
uint32 sizes, then the values row-major. Image files are ``idx3`` (N, H, W) uint8 and
label files ``idx1`` (N,) uint8.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.base import TensorImages
from cnnlab.errors import CnnlabError

PREFIX = {"train": "train", "test": "t10k"}  # official part -> file name prefix
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (gzip detected by content, not name) into a numpy array."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise CnnlabError(f"{path}: broken gzip file ({e})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _DTYPES:
        raise CnnlabError(f"{path}: not an IDX file (magic number {raw[:4].hex() or 'missing'}; "
                          f"expected 00000803 for images or 00000801 for labels)")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[raw[2]])
    start, need = 4 + 4 * ndim, int(np.prod(shape)) * dtype.itemsize
    if len(raw) - start != need:
        raise CnnlabError(f"{path}: IDX header says shape {shape} ({need:,} bytes of data) "
                          f"but the file holds {len(raw) - start:,}; truncated or corrupt")
    return np.frombuffer(raw, dtype, offset=start).reshape(shape)


def find_idx_files(folder: Path, part: str) -> tuple[Path, Path] | None:
    """The (images, labels) files of official part ``train`` or ``test`` in ``folder``, if any."""
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        names = [f"{PREFIX[part]}-{kind}", f"{PREFIX[part]}-{kind}.gz"]
        path = next((folder / n for n in names if (folder / n).is_file()), None)
        if path is None:
            return None
        found.append(path)
    return found[0], found[1]


def load_idx_folder(folder: str | Path, part: str, classes: list[str] | None = None,
                    name: str = "") -> TensorImages:
    """Official part ``train`` or ``test`` of an IDX folder as uint8 (N, 1, H, W) images."""
    folder = Path(folder)
    files = find_idx_files(folder, part)
    if files is None:
        raise CnnlabError(f"{folder}: no {PREFIX[part]}-images-idx3-ubyte[.gz] and "
                          f"{PREFIX[part]}-labels-idx1-ubyte[.gz] files for the {part} split")
    images, labels = read_idx(files[0]), read_idx(files[1])
    if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1:
        raise CnnlabError(f"{files[0]}: expected uint8 (N, H, W) images and (N,) labels, "
                          f"got {images.dtype} {images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise CnnlabError(f"{folder}: {len(images)} images in {files[0].name} but "
                          f"{len(labels)} labels in {files[1].name}")
    labels = torch.from_numpy(labels.astype(np.int64))
    classes = classes or [str(i) for i in range(int(labels.max()) + 1 if len(labels) else 0)]
    if len(labels) and int(labels.max()) >= len(classes):
        raise CnnlabError(f"{files[1]}: label {int(labels.max())} but only {len(classes)} classes")
    images = torch.from_numpy(images.copy())[:, None]  # (N, 1, H, W)
    return TensorImages(images, labels, list(classes), name)
