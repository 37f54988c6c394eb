"""Image-folder trees: ``root/<class>/*.jpg`` (torchvision's ImageFolder layout).

Two layouts:

* split folders: ``root/train/<class>/...`` with ``val/`` (or ``valid/``, ``validation/``) and
  ``test/`` beside it; either may be absent. A missing val split is carved out of train
  (``val_fraction``, stratified, deterministic by seed); a missing test split is an error
  that says so (evaluate on val instead).
* one tree: ``root/<class>/...``, split by ratio: ``test_fraction`` then ``val_fraction``
  of each class (stratified, deterministic by seed), the rest is train.

Small images of one size (say CIFAR's 32x32 JPEGs) are decoded once, in a pool of worker
processes, into a ``TensorImages`` that is cached as a ``.pt`` file under ``$CNNLAB_CACHE``
(default ``~/.cache/cnnlab``), keyed by the folder, its file list and mtimes; the next load
reads the cache. Large or mixed-size images become a ``FileImages`` that DataLoader workers
decode and resize per item; every file's header is read first (and the verdict cached), so a
bad file is named, or left out with ``skip_bad``, before training starts. Passing
``image_size`` resizes every image to that square size and keeps the set in memory when it
fits ``memory_budget``.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.base import FileImages, TensorImages
from cnnlab.data.cache import cache_root
from cnnlab.errors import CnnlabError, MissingSplit, clean
from cnnlab.images import ImageError, peek_image, read_image, resize
from cnnlab.memory import available, check_classes, gb

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp",
                              ".tif", ".tiff", ".ppm", ".pgm"})
SPLIT_DIRS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
DEFAULT_IMAGE_SIZE = 224          # pixels, square: file-backed sets of large or mixed-size images
SMALL_SIDE = 256                  # pixels: one-size images up to this side stay at their size in memory
DEFAULT_MEMORY_BUDGET = 2 << 30   # bytes of decoded uint8 pixels one in-memory split may take
PROBE_FILES = 256                 # headers read to decide the image size and channel count
POOL_MIN_FILES = 2_000            # fewer files decode faster in this process than in a pool
DISK_LEFT_FREE = 1 << 30          # bytes a cache write leaves free on its disk (else the set is not cached)
CACHE_VERSION = 1


# ---------------------------------------------------------------------------------------------
# finding files
# ---------------------------------------------------------------------------------------------

@dataclass
class Tree:
    """One class-folder tree: files in sorted order with labels and (mtime_ns, size) stats."""

    root: Path
    classes: list[str]
    files: list[str]  # str, not Path: a million Path objects take seconds to build
    labels: list[int]
    stats: list[tuple[int, int]]


def split_dirs(root: Path) -> dict[str, Path]:
    """The split folders (train / val / test) that ``root`` has."""
    found = {}
    for split, names in SPLIT_DIRS.items():
        for name in names:
            if (root / name).is_dir():
                found[split] = root / name
                break
    return found


def class_dirs(folder: Path) -> list[str]:
    """Class names: the sorted sub-folder names (hidden ones left out)."""
    return sorted(e.name for e in _scandir(folder) if _kind(e) == "dir" and not e.name.startswith("."))


def _image_entries(folder: str) -> list[os.DirEntry]:
    """Image files under ``folder``, recursively (hidden ones left out), in path order.

    Each folder is listed once, so symbolic links that lead back up the tree end the walk."""
    found, stack, seen = [], [folder], set()
    while stack:
        path = stack.pop()
        st = os.stat(path)
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        for entry in _scandir(path):
            name = entry.name
            if name.startswith("."):
                continue
            kind = _kind(entry)
            if kind == "dir":
                stack.append(entry.path)
            elif kind == "file" and name[name.rfind("."):].lower() in IMAGE_EXTENSIONS:
                found.append(entry)
    found.sort(key=attrgetter("path"))
    return found


def _scandir(folder) -> list[os.DirEntry]:
    """The entries of ``folder``, or a CnnlabError naming it."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as e:
        raise CnnlabError(f"{clean(folder)}: cannot list the folder ({clean(e.strerror or e)})") from None


def _kind(entry: os.DirEntry) -> str | None:
    """"dir", "file", or None for a FIFO, device or socket. A name that cannot be followed (a
    symbolic-link loop) counts as a file, and is reported as a bad one when read."""
    try:
        return "dir" if entry.is_dir() else "file" if entry.is_file() else None
    except OSError:
        return "file"


def _stat(entry: os.DirEntry) -> tuple[int, int]:
    """(mtime_ns, size), or (0, 0) for a name that cannot be followed."""
    try:
        st = entry.stat()
    except OSError:
        return 0, 0
    return st.st_mtime_ns, st.st_size


def scan_tree(folder: Path, classes: list[str]) -> Tree:
    """All image files of ``folder/<class>/`` for the given classes."""
    unknown = sorted(set(class_dirs(folder)) - set(classes))
    if unknown:
        raise CnnlabError(f"{clean(folder)}: class folders {clean(', '.join(unknown))} are not among "
                          f"the training classes ({clean(', '.join(classes))})")
    files, labels, stats = [], [], []
    for label, name in enumerate(classes):
        if not (folder / name).is_dir():
            continue
        for entry in _image_entries(str(folder / name)):
            files.append(entry.path)
            labels.append(label)
            stats.append(_stat(entry))
    if not files:
        raise CnnlabError(f"{clean(folder)}: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) "
                          f"in class folders {clean(folder)}/<class>/")
    return Tree(folder, classes, files, labels, stats)


def is_image_folder(path: Path) -> bool:
    """True when ``path`` holds ``<class>/<image>`` (directly or under train/val/test)."""
    roots = list(split_dirs(path).values()) or [path]
    return any(has_image(root / name) for root in roots for name in class_dirs(root))


def has_image(folder: Path) -> bool:
    """True when ``folder`` holds an image file at any depth (stops at the first one found)."""
    stack, seen = [str(folder)], set()
    while stack:
        path = stack.pop()
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        for entry in _scandir(path):
            name, kind = entry.name, _kind(entry)
            if name.startswith("."):
                continue
            if kind == "file" and name[name.rfind("."):].lower() in IMAGE_EXTENSIONS:
                return True
            if kind == "dir":
                stack.append(entry.path)
    return False


# ---------------------------------------------------------------------------------------------
# splitting
# ---------------------------------------------------------------------------------------------

def stratified_split(labels, val_fraction: float, test_fraction: float = 0.0,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """Indices of train / val / test, taking the fractions of each class.

    Totals are round(N * fraction), shared among classes by largest remainder.
    Deterministic given the labels and the seed; each array is sorted."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise CnnlabError(f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) "
                          f"must be in [0, 1) with a sum below 1")
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    n_test, n_val = _allocate(counts, test_fraction), _allocate(counts, val_fraction)
    rng = np.random.default_rng(seed)
    parts = {"train": [], "val": [], "test": []}
    for c, t, v in zip(classes, n_test, n_val):
        idx = rng.permutation(np.flatnonzero(labels == c))
        parts["test"].append(idx[:t])
        parts["val"].append(idx[t:t + v])
        parts["train"].append(idx[t + v:])
    return {k: np.sort(np.concatenate(v)) if v else np.zeros(0, np.int64) for k, v in parts.items()}


def _allocate(counts: np.ndarray, fraction: float) -> np.ndarray:
    """Per-class shares of round(total * fraction), by largest remainder."""
    quota = counts * fraction
    share = np.floor(quota).astype(int)
    extra = int(round(counts.sum() * fraction)) - share.sum()
    share[np.argsort(-(quota - share), kind="stable")[:extra]] += 1
    return share


def _locate(root: Path, split: str, val_fraction: float, test_fraction: float):
    """(folder to read, classes, (val_fraction, test_fraction) to carve or None for all of it)."""
    dirs = split_dirs(root)
    if not dirs:
        classes = class_dirs(root)
        check_classes(len(classes), f"{clean(root)}: class folders")
        return root, classes, (val_fraction, test_fraction)
    have = ", ".join(f"{p.name}/" for p in dirs.values())
    if "train" in dirs:
        classes = class_dirs(dirs["train"])
    else:
        classes = sorted(set().union(*(class_dirs(p) for p in dirs.values())))
    check_classes(len(classes), f"{clean(root)}: class folders")
    if split in dirs:
        carve = (val_fraction, 0.0) if split == "train" and "val" not in dirs else None
        return dirs[split], classes, carve
    if split == "val" and "train" in dirs:
        return dirs["train"], classes, (val_fraction, 0.0)
    if split == "test":
        raise MissingSplit(f"{root}: no test/ folder (found {have}); evaluate on the val split, "
                          f"or add {root}/test/<class>/ images")
    raise MissingSplit(f"{root}: no {SPLIT_DIRS[split][0]}/ folder for the {split} split (found {have})")


# ---------------------------------------------------------------------------------------------
# decoding and caching
# ---------------------------------------------------------------------------------------------

def _cache_key(tree: Tree, channels, image_size) -> str:
    h = hashlib.sha256(json.dumps([CACHE_VERSION, str(tree.root), tree.classes, channels,
                                   image_size]).encode())
    skip = len(str(tree.root)) + 1
    h.update("".join(f"{f[skip:]}\0{mtime}\0{size}\n"  # surrogateescape: names that are not UTF-8
                     for f, (mtime, size) in zip(tree.files, tree.stats)).encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:24]


def _plan(tree: Tree, channels: int | None, image_size: tuple[int, int] | None,
          memory_budget: int) -> tuple[tuple[int, int, int], bool]:
    """((C, H, W), in_memory) from the headers of a spread sample of the files."""
    pick = np.unique(np.linspace(0, len(tree.files) - 1, min(PROBE_FILES, len(tree.files))).astype(int))
    shapes = []
    for i in pick:
        try:
            shapes.append(peek_image(tree.files[i]))
        except ImageError:
            continue  # found again, and reported, when decoding
    c = channels or (1 if shapes and all(s[0] == 1 for s in shapes) else 3)
    sizes = {s[1:] for s in shapes}
    if image_size is not None:
        h, w = image_size
    elif len(sizes) == 1 and max(next(iter(sizes))) <= SMALL_SIDE:
        h, w = next(iter(sizes))
    else:
        return (c, DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE), False
    return (c, h, w), len(tree.files) * c * h * w <= min(memory_budget, available() // 2)


def _decode_one(job: tuple[str, tuple[int, int, int]]):
    """Worker: one file -> uint8 (C, H, W) numpy array, or the ImageError message."""
    path, (c, h, w) = job
    try:
        return resize(read_image(path, channels=c), (h, w)).numpy()
    except ImageError as e:
        return str(e)


def _init_worker() -> None:
    torch.set_num_threads(1)  # as DataLoader workers do: one thread per process


def _decode_all(files: list[str], shape: tuple[int, int, int], workers: int):
    """Decode every file; returns (images of the good files, ok mask, error messages)."""
    images = torch.empty((len(files), *shape), dtype=torch.uint8)  # (N, C, H, W)
    ok = torch.ones(len(files), dtype=torch.bool)
    errors = []

    def fill(results):
        for i, r in enumerate(results):
            if isinstance(r, str):
                ok[i] = False
                errors.append(r)
            else:
                images[i] = torch.from_numpy(r)

    fill(_map(_decode_one, [(f, shape) for f in files], workers))
    return (images if ok.all() else images[ok]), ok, errors


def _map(fn, jobs: list, workers: int):
    """``fn`` over ``jobs`` in order: in a pool of worker processes when there are many."""
    fork = "fork" in multiprocessing.get_all_start_methods()  # Linux; elsewhere work here
    if workers > 1 and len(jobs) >= POOL_MIN_FILES and fork:
        # fork: workers start at once and need no `if __name__ == "__main__"` guard in scripts
        with multiprocessing.get_context("fork").Pool(workers, _init_worker) as pool:
            yield from pool.imap(fn, jobs, chunksize=256)
    else:
        yield from map(fn, jobs)


def _decode_to_cache(tree: Tree, shape, path: Path, workers: int) -> dict:
    """Decode the tree and write it to the cache file ``path`` atomically."""
    images, ok, errors = _decode_all(tree.files, shape, workers)
    data = {"images": images, "ok": ok, "errors": errors}
    _save_atomic(data, path)
    return data


def _save_atomic(data: dict, path: Path) -> None:
    """torch.save ``data`` to ``path`` through a temporary file beside it, renamed once whole: a
    reader never sees half a cache file, and a failed or interrupted write leaves none. A set
    whose tensors would leave less than ``DISK_LEFT_FREE`` on the disk is not cached at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = sum(v.numel() * v.element_size() for v in data.values() if isinstance(v, torch.Tensor))
    if shutil.disk_usage(path.parent).free - size < DISK_LEFT_FREE:
        warnings.warn(f"not caching the decoded images ({gb(size)}): {path.parent} has too little free space",
                      stacklevel=3)
        return
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _peek_one(path: str) -> str | None:
    """Worker: the ImageError message of a file whose header cannot be read, else None."""
    try:
        peek_image(path)
    except ImageError as e:
        return str(e)
    return None


def _header_errors(tree: Tree, path: Path, workers: int) -> dict[int, str]:
    """{file index: message} of the files whose header cannot be read; cached in ``path``."""
    if path.is_file():
        return torch.load(path, weights_only=True)["errors"]
    errors = {i: e for i, e in enumerate(_map(_peek_one, tree.files, workers)) if e is not None}
    _save_atomic({"errors": errors}, path)
    return errors


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------

def load_folder(root: str | Path, split: str, seed: int = 0, *, val_fraction: float = 0.1,
                test_fraction: float = 0.2, skip_bad: bool = False,
                image_size: int | tuple[int, int] | None = None, channels: int | None = None,
                name: str | None = None, cache_dir: Path | None = None,
                memory_budget: int = DEFAULT_MEMORY_BUDGET, workers: int = 2):
    """Split ``split`` of an image-folder tree as TensorImages (cached) or FileImages.

    skip_bad: leave unreadable files out and list them in ``.skipped`` (default: raise a
    CnnlabError naming the first bad file). test_fraction only applies to a one-tree layout.
    """
    root = Path(root).expanduser().resolve()
    name = clean(f"{name or root.name}/{split}")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    folder, classes, carve = _locate(root, split, val_fraction, test_fraction)
    tree = scan_tree(folder, classes)
    pick = np.arange(len(tree.files))
    if carve is not None:
        pick = stratified_split(tree.labels, *carve, seed=seed)[split]
        if len(pick) == 0:
            raise CnnlabError(f"{clean(folder)}: the {split} split is empty (val_fraction={carve[0]}, "
                              f"test_fraction={carve[1]})")
    cached = (cache_dir or cache_root()) / "folders" / f"{_cache_key(tree, channels, image_size)}.pt"
    if cached.is_file():
        data = torch.load(cached, weights_only=True, mmap=True)  # pages are read on first use
    else:
        shape, in_memory = _plan(tree, channels, image_size, memory_budget)
        if not in_memory:
            errors = _header_errors(tree, cached.with_suffix(".headers.pt"), workers)
            return _file_images(tree, pick, errors, shape, name, skip_bad)
        data = _decode_to_cache(tree, shape, cached, workers)
    ok = data["ok"].numpy()
    errors = dict(zip(np.flatnonzero(~ok).tolist(), data["errors"]))  # one message per bad file
    bad, keep = pick[~ok[pick]], pick[ok[pick]]
    _check_bad(bad, keep, errors, skip_bad, name)
    images = data["images"]
    if len(keep) < len(images):
        rows = np.cumsum(ok) - 1  # file index -> row in data["images"]
        flat = images.view(len(images), -1).index_select(0, torch.from_numpy(rows[keep]))
        images = flat.view(len(keep), *images.shape[1:])
    labels = torch.tensor(tree.labels, dtype=torch.int64)[torch.from_numpy(keep)]
    out = TensorImages(images, labels, [clean(c) for c in tree.classes], name)
    out.skipped = [tree.files[i] for i in bad]
    return out


def _check_bad(bad, keep, errors: dict[int, str], skip_bad: bool, name: str) -> None:
    """Raise for the first bad file unless ``skip_bad``; raise anyway when no file is left."""
    if len(bad) and not skip_bad:
        raise CnnlabError(f"{errors[int(bad[0])]} ({len(bad)} bad file(s) in {name}; "
                          f"skip_bad=True / --skip-bad leaves them out)")
    if len(keep) == 0:
        raise CnnlabError(f"{name}: none of its {len(bad)} image files can be read, "
                          f"e.g. {errors[int(bad[0])]}")


def _file_images(tree: Tree, pick: np.ndarray, errors: dict[int, str], shape, name: str,
                 skip_bad: bool) -> FolderFiles:
    """A file-backed split of the files whose header reads; the others raise or are skipped."""
    bad = [i for i in pick if i in errors]
    keep = [i for i in pick if i not in errors]
    _check_bad(bad, keep, errors, skip_bad, name)
    out = FolderFiles([tree.files[i] for i in keep], [tree.labels[i] for i in keep],
                      [clean(c) for c in tree.classes], shape, name, skip_bad=skip_bad)
    out.skipped = [tree.files[i] for i in bad]
    return out


class FolderFiles(FileImages):
    """A file-backed folder split. With ``skip_bad``, a file that fails to decode though its
    header read (say, truncated) gives way to the next file, with a warning naming it: a
    DataLoader worker cannot leave an item out of its batch."""

    def __init__(self, *args, skip_bad: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip_bad = skip_bad

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if not self.skip_bad:
            return super().__getitem__(i)
        for k in range(i, i + len(self)):
            try:
                return super().__getitem__(k % len(self))
            except ImageError as e:
                warnings.warn(f"{e} (skip_bad: the next file stands in)", stacklevel=2)
        raise CnnlabError(f"{self.name}: no file can be decoded")
