"""MNIST-family IDX files (MNIST, Fashion-MNIST, KMNIST...), raw or gzipped.

    train = load_idx_folder("/usr/share/datasets/fashion-mnist", "train")   # TensorImages (N, 1, 28, 28)

IDX layout: a 4-byte magic number ``0x00 0x00 <type> <ndim>``, ``ndim`` big-endian
uint32 sizes, then the values row-major. Image files are ``idx3`` (N, H, W) uint8 and
label files ``idx1`` (N,) uint8.

Hostile files are refused before any large allocation: the header's size must fit
``MAX_IDX_BYTES``, match a raw file's length, and be one a gzip file of this length could
hold; a gzip stream is decompressed only up to the size the header claims.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.base import TensorImages
from cnnlab.errors import CnnlabError, clean

PREFIX = {"train": "train", "test": "t10k"}  # official part -> file name prefix
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_IDX_BYTES = 4 << 30   # bytes of data one IDX file may hold (EMNIST's largest: ~550 MB)
MAX_CLASSES = 65_536      # label values a file without class names may use
_GZIP_MAX_RATIO = 1_100   # deflate expands at most ~1032x: a larger claim is a lie
_CHUNK = 1 << 20          # bytes decompressed per read


def read_idx(path: str | Path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read one IDX file (gzip detected by content, not name) into a numpy array."""
    path = Path(path)
    name = clean(path)
    if not path.is_file():  # also refuses a FIFO, which would block an open
        raise CnnlabError(f"{name}: no such file (or not a regular file)")
    try:
        with open(path, "rb") as f:
            return _read_open_idx(f, name, max_bytes)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise CnnlabError(f"{name}: cannot read ({clean(getattr(e, 'strerror', None) or e)})") from None


def _read_open_idx(raw, name: str, max_bytes: int) -> np.ndarray:
    """``read_idx`` of an open file: header, size checks, then exactly the data it announces."""
    size = os.fstat(raw.fileno()).st_size
    gz = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    with (gzip.GzipFile(fileobj=raw) if gz else raw) as f:
        shape, dtype = _read_header(f, name)
        need = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        _check_claim(name, shape, need, size - (0 if gz else 4 + 4 * len(shape)), gz, max_bytes)
        return np.frombuffer(_read_data(f, need, name, shape), dtype).reshape(shape)


def _read_header(f, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from the magic number and the sizes."""
    magic = f.read(4)
    if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _DTYPES or magic[3] == 0:
        raise CnnlabError(f"{name}: not an IDX file (magic number {magic.hex() or 'missing'}; "
                          f"expected 00000803 for images or 00000801 for labels)")
    sizes = f.read(4 * magic[3])
    if len(sizes) < 4 * magic[3]:
        raise CnnlabError(f"{name}: IDX header truncated ({magic[3]} sizes announced)")
    shape = struct.unpack(f">{magic[3]}I", sizes)
    if 0 in shape:
        raise CnnlabError(f"{name}: IDX header says shape {shape}; expected every size to be at least 1")
    return shape, np.dtype(_DTYPES[magic[2]])


def _check_claim(name: str, shape, need: int, have: int, gz: bool, max_bytes: int) -> None:
    """Refuse a header whose data size is over the limit or more than the file can hold."""
    said = f"IDX header says shape {shape} ({need:,} bytes of data)"
    if need > max_bytes:
        raise CnnlabError(f"{name}: {said}, over the limit of {max_bytes:,} bytes; pass max_bytes= "
                          f"to read it")
    if gz and need > _GZIP_MAX_RATIO * have:
        raise CnnlabError(f"{name}: {said} but a gzip file of {have:,} bytes cannot hold that much; "
                          f"truncated or corrupt")
    if not gz and need != have:
        raise CnnlabError(f"{name}: {said} but the file holds {have:,}; truncated or corrupt")


def _read_data(f, need: int, name: str, shape) -> bytearray:
    """Exactly ``need`` bytes from ``f``, which must then be at its end (never decompress more)."""
    data = bytearray(need)
    view, got = memoryview(data), 0
    while got < need:
        n = f.readinto(view[got:got + _CHUNK])
        if not n:
            break
        got += n
    if got < need or f.read(1):
        held = f"{got:,} bytes" if got < need else "more"
        raise CnnlabError(f"{name}: IDX header says shape {shape} ({need:,} bytes of data) but the "
                          f"file holds {held}; truncated or corrupt")
    return data


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
    if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise CnnlabError(f"{clean(files[0])}: expected uint8 (N, H, W) images and integer (N,) "
                          f"labels, got {images.dtype} {images.shape} and {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise CnnlabError(f"{clean(folder)}: {len(images)} images in {clean(files[0].name)} but "
                          f"{len(labels)} labels in {clean(files[1].name)}")
    labels = torch.from_numpy(labels.astype(np.int64))
    classes = _check_labels(labels, classes, clean(files[1]))
    images = torch.from_numpy(images)[:, None]  # (N, 1, H, W); read_idx's array is writable
    return TensorImages(images, labels, classes, name)


def _check_labels(labels: torch.Tensor, classes: list[str] | None, name: str) -> list[str]:
    """The class names: ``classes``, or "0".."K-1" for labels up to K-1; refuse labels out of range."""
    low, high = int(labels.min()), int(labels.max())  # read_idx refuses empty files
    if low < 0:
        raise CnnlabError(f"{name}: label {low} is negative; expected class indices 0, 1, ...")
    limit = len(classes) if classes else MAX_CLASSES
    if high >= limit:
        raise CnnlabError(f"{name}: label {high} but only {limit:,} classes"
                          + ("" if classes else " may be numbered without class names"))
    return list(classes) if classes else [str(i) for i in range(high + 1)]
