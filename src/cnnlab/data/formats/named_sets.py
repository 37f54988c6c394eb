"""Real datasets by name: mnist, fashion-mnist, cifar10, cifar100.

    train = load_dataset("fashion-mnist", "train")      # 54,000 images; val = the other 6,000
    test = load_dataset("cifar10", "test", download=True)

Where each is looked for, in order:

1. system folders (Fashion-MNIST: ``/usr/share/datasets/fashion-mnist/``, from the Debian
   package ``dataset-fashion-mnist``);
2. ``$CNNLAB_DATA/<name>`` or, without that variable, ``~/.cache/cnnlab/data/<name>``, in
   any layout ``load_path`` reads (torchvision's download layout included).

``download=True`` fetches the official files with torchvision's downloaders into folder 2.
Splits: test is the official test set; val is ``val_fraction`` of the official train set.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cnnlab.data.formats.classification import find_cifar_dir, find_idx_dir, load_path
from cnnlab.data.registry import register_dataset
from cnnlab.errors import CnnlabError


@dataclass(frozen=True)
class Source:
    torchvision_class: str         # the torchvision.datasets downloader
    description: str
    classes: tuple[str, ...] = ()  # IDX files carry no class names
    system_dirs: tuple[str, ...] = ()
    apt_package: str = ""


FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

SOURCES = {
    "mnist": Source("MNIST", "MNIST handwritten digits: 70,000 28x28 gray images, 10 classes",
                    tuple(str(d) for d in range(10))),
    "fashion-mnist": Source("FashionMNIST", "Fashion-MNIST (Zalando): 70,000 28x28 gray images "
                            "of clothing, 10 classes", FASHION_CLASSES,
                            ("/usr/share/datasets/fashion-mnist",), "dataset-fashion-mnist"),
    "cifar10": Source("CIFAR10", "CIFAR-10: 60,000 32x32 colour images, 10 classes"),
    "cifar100": Source("CIFAR100", "CIFAR-100: 60,000 32x32 colour images, 100 fine classes"),
}


def data_dir(name: str) -> Path:
    """``$CNNLAB_DATA/<name>``, else ``~/.cache/cnnlab/data/<name>``: where downloads go."""
    base = os.environ.get("CNNLAB_DATA")
    return (Path(base) if base else Path.home() / ".cache" / "cnnlab" / "data") / name


def find(name: str) -> Path | None:
    """The first folder holding dataset ``name`` in a readable layout, or None."""
    for folder in [*map(Path, SOURCES[name].system_dirs), data_dir(name)]:
        if folder.is_dir() and (find_idx_dir(folder) or find_cifar_dir(folder)):
            return folder
    return None


def fetch(name: str) -> Path:
    """Fetch ``name`` with torchvision's downloader into ``data_dir(name)``."""
    import torchvision.datasets

    folder = data_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    downloader = getattr(torchvision.datasets, SOURCES[name].torchvision_class)
    try:
        for train in (True, False):
            downloader(str(folder), train=train, download=True)
    except (OSError, RuntimeError) as e:  # URLError is an OSError
        raise CnnlabError(f"{name}: download into {folder} failed ({e}); check the internet "
                          f"connection or copy the files there") from None
    return folder


def load_named(name: str, split: str, seed: int = 0, *, download: bool = False, **opts):
    """Split ``split`` of the named dataset; ``opts`` as for ``load_path``."""
    source = SOURCES[name]
    folder = find(name) or (fetch(name) if download else None)
    if folder is None:
        looked = ", ".join([*source.system_dirs, str(data_dir(name))])
        apt = f", or `apt-get install {source.apt_package}`" if source.apt_package else ""
        raise CnnlabError(f"{name}: not found (looked in {looked}); pass --download "
                          f"(download=True) to fetch it{apt}, or set $CNNLAB_DATA")
    return load_path(folder, split, seed, classes=list(source.classes) or None, name=name, **opts)


def _register(name: str) -> None:
    @register_dataset(name, description=SOURCES[name].description)
    def builder(split: str, seed: int = 0, **opts):
        return load_named(name, split, seed, **opts)


for _name in SOURCES:
    _register(_name)
