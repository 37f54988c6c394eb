"""What the experiments share: in-memory splits for the one trainer, shifted images, accuracy.

    splits = load_splits("digits", train_size=1000)              # {"train", "val", "test"} in memory
    run, lm = train_model("fc-vs-cnn/digits", splits, "mlp", {"image_size": 8}, out="runs/x", epochs=8)
    accuracy(lm, shift(splits["test"].images, 0, 2), splits["test"].labels)

    with fixed_threads(1):   # results that do not depend on the machine's thread count
        ...
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor

from cnnlab.data import load_dataset
from cnnlab.data.base import FileImages, TensorImages
from cnnlab.deploy.pytorch_model import LoadedModel
from cnnlab.engine.config import TrainConfig
from cnnlab.engine.trainer import RunResult, fit
from cnnlab.errors import CnnlabError
from cnnlab.files import make_folder

DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))  # (dy, dx) unit steps: right, left, down, up

# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------

def load_splits(spec: str, train_size: int | None = None, test_size: int | None = None,
                seed: int = 0) -> dict[str, TensorImages]:
    """train/val/test of a dataset name or path, in memory; train and test capped by a seeded draw."""
    splits = {}
    for split, cap in (("train", train_size), ("val", None), ("test", test_size)):
        data = load_dataset(spec, split, seed=seed)
        if isinstance(data, FileImages):  # decode once: experiments index whole splits
            images = torch.stack([data[i][0] for i in range(len(data))])  # (N, C, H, W)
            data = TensorImages(images, data.labels, data.classes, data.name)
        if cap and cap < len(data):
            g = torch.Generator().manual_seed(seed)
            data = data.subset(torch.randperm(len(data), generator=g)[:cap].sort().values)
        splits[split] = data
    return splits


def map_images(splits: dict[str, TensorImages], fn) -> dict[str, TensorImages]:
    """The same splits with ``fn`` applied to every (N, C, H, W) image batch."""
    return {s: TensorImages(fn(d.images), d.labels, d.classes, d.name) for s, d in splits.items()}


# ---------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------

def shift(images: Tensor, dy: int, dx: int) -> Tensor:
    """Translate a (N, C, H, W) batch by ``dy`` rows and ``dx`` columns, filling with zeros."""
    out = torch.zeros_like(images)
    h, w = images.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = images[..., ys, xs]
    return out


def pixel_permutation(image_shape: tuple[int, int, int], seed: int) -> Tensor:
    """One fixed permutation of the H*W pixel positions (the same for every channel)."""
    _, h, w = image_shape
    return torch.randperm(h * w, generator=torch.Generator().manual_seed(seed))


def permute_pixels(images: Tensor, permutation: Tensor) -> Tensor:
    """Scramble every image's pixels by one permutation of positions: (N, C, H, W) -> same shape."""
    n, c, h, w = images.shape
    return images.reshape(n, c, h * w)[:, :, permutation].reshape(n, c, h, w)


# ---------------------------------------------------------------------------------------------
# training and scoring
# ---------------------------------------------------------------------------------------------

@contextmanager
def fixed_threads(threads: int = 1):
    """Run the block with ``threads`` intra-op threads and deterministic algorithms; restore both after.

    How many threads split a convolution's weight gradient (oneDNN over OpenMP) changes the order
    in which its float partial sums are added: the same seed gives bitwise different weights at
    ``OMP_NUM_THREADS=1`` and 2 after one step, and after a few epochs different models. Pinning
    the count makes an experiment's figures the same on every machine with the same kernels; one
    thread costs nothing for these tiny models on small inputs (faster than two on a 2-core CPU).
    """
    if threads < 1:
        raise CnnlabError(f"threads {threads}: expected at least 1")
    before = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)  # fit() turns it on for good


def train_model(name: str, splits: dict[str, TensorImages], model: str, model_args: dict, out: str | Path, *,
                epochs: int, batch_size: int, seed: int = 0, lr: float = 0.0, flip: bool = False,
                translate: int = 0, checkpoint: str = "best.pt", deterministic: bool = False,
                log=None) -> tuple[RunResult, LoadedModel]:
    """Train on in-memory ``splits`` (train, val, optionally test) with the one trainer
    (``engine.fit``; ``name`` labels the data in its config); the run and its ``checkpoint``
    (best.pt: the best validation epoch; last.pt: the end of the schedule), loaded.
    ``deterministic``: torch's deterministic algorithms where they exist (the thread count is
    pinned by ``fixed_threads``)."""
    cfg = TrainConfig(task="classify", data=name, model=model, model_args=dict(model_args), epochs=epochs,
                      batch_size=batch_size, lr=lr, flip=flip, translate=translate, seed=seed,
                      deterministic=deterministic, workers=0, plots=False, out=str(make_folder(out, parents=True)),
                      exist_ok=True)  # the experiment's own folder: a rerun replaces its runs
    run = fit(cfg, data=splits, log=log or _quiet)
    return run, LoadedModel.from_checkpoint(run.out / checkpoint)


def training_seconds(run: RunResult) -> float:
    """Seconds spent in training steps (evaluation and checkpoints left out)."""
    return sum(row["seconds"] for row in run.history)


@torch.no_grad()
def logits(lm: LoadedModel, images: Tensor, batch_size: int = 512) -> Tensor:
    """Float logits (N, K) of uint8 images (N, C, H, W), in batches."""
    return torch.cat([lm.logits(images[i:i + batch_size]).cpu() for i in range(0, len(images), batch_size)])


def accuracy(lm: LoadedModel, images: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy (a fraction) of ``lm`` on uint8 images."""
    if len(images) == 0:
        raise CnnlabError("accuracy of an empty set of images")
    return float((logits(lm, images).argmax(1) == labels).float().mean())


def shifted_accuracy(lm: LoadedModel, images: Tensor, labels: Tensor, pixels: int) -> float:
    """Mean top-1 accuracy over the four translations by ``pixels`` (right, left, down, up)."""
    if pixels == 0:
        return accuracy(lm, images, labels)
    return sum(accuracy(lm, shift(images, dy * pixels, dx * pixels), labels)
               for dy, dx in DIRECTIONS) / len(DIRECTIONS)


def _quiet(*args, **kwargs) -> None:
    pass
