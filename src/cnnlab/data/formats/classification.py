"""A dataset given by path: detect its layout and load one split.

    load_path("~/data/fashion", "val", seed=1)            # IDX files: val carved out of train
    load_path("../shared/data/cifar10", "test")           # image-folder tree, cached after one decode

Layouts, tried in this order:

* IDX (MNIST family): ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
  ``t10k-...`` in the folder, in ``raw/`` or in ``*/raw/`` (torchvision's download layout);
* CIFAR python pickles: the folder, ``cifar-10-batches-py/`` or ``cifar-100-python/``;
* an image-folder tree (see ``cnnlab.data.formats.class_folders``).

For IDX and CIFAR the test split is the official test set and val is ``val_fraction``
of the official train set (stratified, deterministic by seed); train is the rest. An
annotation file (YAML, JSON, XML) is refused with the task that reads it.
"""
from __future__ import annotations

from pathlib import Path

import torch

from cnnlab.data.base import TensorImages
from cnnlab.data.formats.cifar import cifar_variant, load_cifar_folder
from cnnlab.data.formats.class_folders import class_dirs, has_image, is_image_folder, load_folder, split_dirs, stratified_split
from cnnlab.data.formats.idx import find_idx_files, load_idx_folder
from cnnlab.data.layout import register_layout
from cnnlab.data.registry import register_path_loader
from cnnlab.errors import CnnlabError, clean
from cnnlab.images import resize

LAYOUTS = ("an IDX folder (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...), "
           "a CIFAR pickle folder (data_batch_1..5, test_batch, batches.meta; or train, test, meta), "
           "or an image-folder tree (<class>/<image>, optionally under train/ val/ test/)")


@register_path_loader("classify")
def load_path(path: str | Path, split: str, seed: int = 0, *, skip_bad: bool = False,
              val_fraction: float = 0.1, test_fraction: float = 0.2,
              image_size: int | tuple[int, int] | None = None, channels: int | None = None,
              classes: list[str] | None = None, name: str | None = None, download: bool = False):
    """Split ``split`` (train / val / test) of the dataset at ``path``.

    skip_bad and test_fraction apply to image folders; classes (names in label order)
    to IDX files, which carry no names. image_size and channels convert any layout.
    """
    path = Path(path).expanduser()
    if download:
        raise CnnlabError(f"{path}: download works for the named datasets (mnist, fashion-mnist, "
                          f"cifar10, cifar100), not for a path")
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml", ".json", ".xml"):  # another task's annotations
        raise CnnlabError(f"{path}: an annotation file (Ultralytics YAML, COCO JSON) is read with --task detect "
                          f"(caption JSON with --task caption); classification reads a folder holding {LAYOUTS}")
    if not path.is_dir():
        raise CnnlabError(f"{path}: expected a folder holding {LAYOUTS}")
    name = name or path.resolve().name
    idx_dir, cifar_dir = find_idx_dir(path), find_cifar_dir(path)
    if idx_dir is not None:
        part = load_idx_folder(idx_dir, "test" if split == "test" else "train", classes, name)
    elif cifar_dir is not None:
        part = load_cifar_folder(cifar_dir, "test" if split == "test" else "train", name)
    elif is_image_folder(path):
        check_class_folders(path)
        return load_folder(path, split, seed, val_fraction=val_fraction, test_fraction=test_fraction,
                           skip_bad=skip_bad, image_size=image_size, channels=channels, name=name)
    else:
        raise CnnlabError(f"{path}: no dataset found; expected {LAYOUTS}")
    return convert(carve(part, split, val_fraction, seed), channels, image_size)


@register_layout("classify")
def classification_layout(path: Path) -> str | None:
    """What classification layout ``path`` holds (for ``cnnlab.data.layout``), or None."""
    if not path.is_dir():
        return None
    if find_idx_dir(path) is not None:
        return "MNIST-family IDX files"
    if find_cifar_dir(path) is not None:
        return "CIFAR pickles"
    if is_image_folder(path):
        splits = split_dirs(path)
        return f"class folders ({'/'.join(splits)}/<class>/<image>)" if splits else "class folders (<class>/<image>)"
    return None


# Folder names that belong to another task's layout: a class-folder tree holding one of these
# is another task's dataset read wrongly (a classifier over "Annotations" and "JPEGImages").
OTHER_LAYOUT_FOLDERS = {"annotations": "detection (Pascal VOC)", "jpegimages": "Pascal VOC",
                        "imagesets": "Pascal VOC", "labels": "detection (YOLO)", "masks": "segmentation",
                        "segmentationclass": "segmentation (Pascal VOC)", "segmentationobject": "Pascal VOC",
                        "trainannot": "segmentation (CamVid/SegNet)", "valannot": "segmentation (CamVid/SegNet)",
                        "testannot": "segmentation (CamVid/SegNet)", "xmls": "detection (Pascal VOC)"}


def check_class_folders(path: Path) -> None:
    """Refuse a class-folder tree with an empty class, or with another layout's folder names."""
    for root in list(split_dirs(path).values()) or [path]:
        for name in class_dirs(root):
            if name.lower() in OTHER_LAYOUT_FOLDERS:
                raise CnnlabError(f"{clean(root / name)}: a {OTHER_LAYOUT_FOLDERS[name.lower()]} folder, not a "
                                  f"class; {clean(path)} looks like another task's dataset whose layout is "
                                  f"incomplete (`cnnlab data check {clean(path)}` says what it finds)")
            if not has_image(root / name):
                raise CnnlabError(f"{clean(root / name)}: an empty class folder (no images); every class "
                                  f"folder of {clean(path)} must hold images of its class")


def find_idx_dir(path: Path) -> Path | None:
    """The folder holding IDX train or test files: ``path``, ``path/raw`` or ``path/*/raw``."""
    for d in [path, path / "raw", *sorted(path.glob("*/raw"))]:
        if find_idx_files(d, "train") or find_idx_files(d, "test"):
            return d
    return None


def find_cifar_dir(path: Path) -> Path | None:
    """The CIFAR pickle folder: ``path``, ``path/cifar-10-batches-py`` or ``path/cifar-100-python``."""
    for d in (path, path / "cifar-10-batches-py", path / "cifar-100-python"):
        if cifar_variant(d):
            return d
    return None


def carve(part: TensorImages, split: str, val_fraction: float, seed: int) -> TensorImages:
    """``split`` from an official part: test is all of it; val and train share the train part."""
    name = f"{part.name}/{split}"
    if split == "test" or (split == "train" and val_fraction == 0):
        part.name = name
        return part
    index = stratified_split(part.labels.numpy(), val_fraction, 0.0, seed)[split]
    if len(index) == 0:
        raise CnnlabError(f"{part.name}: the {split} split is empty (val_fraction={val_fraction})")
    return part.subset(torch.from_numpy(index), name)


def convert(data: TensorImages, channels: int | None, image_size) -> TensorImages:
    """Change the channel count (1 <-> 3, +alpha) and resize to ``image_size``, whole batch."""
    images = data.images  # (N, C, H, W)
    c = images.shape[1]
    if channels not in (None, c):
        if channels == 1:
            weights = torch.tensor([299, 587, 114], dtype=torch.int32).view(1, 3, 1, 1)  # ITU-R 601
            images = ((images[:, :3].int() * weights).sum(1, keepdim=True) + 500) // 1000
            images = images.to(torch.uint8)
        else:
            rgb = images[:, :3] if c >= 3 else images.expand(-1, 3, -1, -1)
            alpha = [torch.full_like(rgb[:, :1], 255)] if channels == 4 else []
            images = torch.cat([rgb, *alpha], 1).contiguous()
    if image_size is not None:
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        images = resize(images, size)
    if images is data.images:
        return data
    return TensorImages(images, data.labels, data.classes, data.name, data.skipped)
