"""The Fashion-MNIST recipe on a 10% subset (6,000 train + 1,000 test images as IDX files).

An issue: on 8,000 images (15 steps an epoch) the recipe trained to 97% but scored 73-74% in eval
mode. Cause: airbench's learning rate peaks after a handful of steps on a small set, one SGD step
then moves the weights so far that BatchNorm statistics gathered one step earlier no longer fit
them, and eval mode (which uses those statistics) collapses. The model now re-estimates its
statistics with the current weights when it leaves training mode, so eval mode must match train
mode after every epoch, the peak included.
"""
from __future__ import annotations

import copy
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.data.formats.idx import read_idx
from cnnlab.data.loader import Batches

FASHION = Path("/usr/share/datasets/fashion-mnist")
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "fashion-mnist.yaml"
# On this subset's 1,000 test images lecture_cnn (the default model, 8 epochs, 358 steps, the same
# 5% val carve) scores 86.4%; the recipe (4 epochs, 44 steps) 84.7% after its last epoch. The
# failure reported scored 74%; before the fix, at the peak (epoch 1), eval mode trailed train mode
# by 2-22 points on 10% subsets (2.3 on this one).
BAR = 0.84


def write_idx(path: Path, array: np.ndarray) -> None:
    """A gzipped IDX file of uint8 ``array`` (magic 0x0000 08 ndim, big-endian sizes, values)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes(), compresslevel=1))


def write_subset(source: Path, folder: Path, fraction: float = 0.1, seed: int = 0) -> Path:
    """``fraction`` of each official part of an IDX folder, stratified by class, as IDX .gz files."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("train", "t10k"):
        images = read_idx(source / f"{part}-images-idx3-ubyte.gz")
        labels = read_idx(source / f"{part}-labels-idx1-ubyte.gz")
        keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:round(fraction * (labels == c).sum())]
                                       for c in np.unique(labels)]))
        write_idx(folder / f"{part}-images-idx3-ubyte.gz", images[keep])
        write_idx(folder / f"{part}-labels-idx1-ubyte.gz", labels[keep])
    return folder


@torch.no_grad()
def accuracy(model, task, batches, mode: str) -> float:
    """Top-1 of a copy of ``model`` in ``mode`` ("eval": running statistics, "train": each batch's)."""
    probe = copy.deepcopy(model).train(mode == "train")  # a copy: train mode moves running statistics
    correct = sum((probe(task.prepare(x)).argmax(1) == y).sum().item() for x, y in batches)
    return correct / sum(len(y) for _, y in batches)


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason=f"Fashion-MNIST not installed at {FASHION} "
                                                 "(Debian package dataset-fashion-mnist)")
def test_fashion_recipe_on_a_tenth_of_the_data(tmp_path):
    subset = write_subset(FASHION, tmp_path / "fashion-10pct")
    train = cnnlab.load_dataset(str(subset), "train", val_fraction=0.05)
    assert len(train) == 5700 and torch.bincount(train.labels).min() >= 550
    cpu = torch.device("cpu")
    # 2,048 images; IDX files keep Fashion-MNIST's mixed class order, so each batch holds every class
    probe = [b for _, b in zip(range(4), Batches(train, 512, cpu, shuffle=False).epoch(0))]
    test = list(Batches(cnnlab.load_dataset(str(subset), "test"), 1000, cpu, shuffle=False).epoch(0))
    epochs = []

    def on_epoch(row, model, task):  # after validation: the model as evaluated and saved
        epochs.append({"eval": accuracy(model, task, probe, "eval"), "train": accuracy(model, task, probe, "train"),
                       "test": accuracy(model, task, test, "eval")})

    run = cnnlab.train(config=RECIPE, data=str(subset), out=str(tmp_path / "run"), plots=False,
                       on_epoch=on_epoch, log=lambda *a, **k: None)
    assert len(epochs) == 4  # epoch 1 ends at the learning-rate peak: the worst case before the fix
    for i, e in enumerate(epochs, 1):
        assert abs(e["train"] - e["eval"]) <= 0.01, f"epoch {i}: eval mode {e['eval']:.3f}, train mode {e['train']:.3f}"
    assert epochs[-1]["test"] >= BAR, f"last epoch: test top-1 {epochs[-1]['test']:.4f} < {BAR}"
    assert run.test["count"] == 1000 and run.test["top1"] >= BAR - 0.02  # best.pt: picked on 300 val images
