"""CIFAR-10 time-to-accuracy on the CPU: cnnlab's default recipe (``recipes/cifar10.yaml``).

    python benchmarks/cifar10.py                  # full run (~10 min of training)
    python benchmarks/cifar10.py --quick          # smoke run (< 1 min): 1 epoch on 2,048 images
    python benchmarks/cifar10.py --cold-cache     # also time the one-time JPEG decode (fresh cache)

Data: the image-folder tree at ``--data`` (default ``/work/shared/data/cifar10``: 50,000 train and
10,000 test 32x32 JPEGs). ``cnnlab.load_dataset`` decodes it once into a cached uint8 tensor
(``$CNNLAB_CACHE`` or ``~/.cache/cnnlab``); that decode is reported apart from training.
``seconds`` is cumulative training time (the trainer's per-epoch ``row["seconds"]``), with the
per-epoch test evaluation left out. The bar: >= 90% test top-1 within 600 s of training.

The final model is also evaluated with airbench's test-time augmentation (each image, its
mirror image and both shifted by one pixel: 6 forward passes, ``cnnlab eval --tta 2``); the
bar is reported for the single view and for that.

Also reported: training images/s (the trainer's), and inference images/s on the test set both
as ``cnnlab evaluate`` runs it (fp32) and under bf16 autocast (as ``cnnlab predict`` runs it).
Prints tables; appends nothing anywhere (copy the figures into RESULTS.md by hand).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

import cnnlab
from cnnlab.data.loader import Batches
from cnnlab.engine.config import TrainConfig
from cnnlab.runtime.device import autocast, pick_device, use_bf16
from cnnlab.runtime.distributed import Dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fashion_mnist import machine, print_curve, register_subset, time_to  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "cifar10.yaml"
DATA = Path("/work/shared/data/cifar10")
BAR_ACCURACY, BAR_SECONDS = 0.90, 600.0


def cache_files() -> set[Path]:
    root = Path(os.environ.get("CNNLAB_CACHE") or Path.home() / ".cache" / "cnnlab") / "folders"
    return set(root.glob("*.pt")) if root.is_dir() else set()


@torch.no_grad()
def inference_images_per_s(model, task, test, device, amp: bool, batch: int = 1000) -> float:
    """Test-set images/s of ``task.logits`` (normalise + forward), eval mode, after one warm-up batch."""
    model.eval()
    batches = Batches(test, batch, device, shuffle=False)
    images, _ = next(iter(batches.epoch(0)))
    with autocast(device, amp):
        task.logits(model, images)
        t0, n = time.perf_counter(), 0
        for images, _ in batches.epoch(0):
            task.logits(model, images)
            n += len(images)
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 1 epoch on 2,048 images (< 1 min)")
    p.add_argument("--data", type=Path, default=DATA, help="CIFAR-10 image-folder tree (default: %(default)s)")
    p.add_argument("--recipe", type=Path, default=RECIPE, help="the cnnlab recipe (default: %(default)s)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra recipe overrides (for tuning; a recorded run uses none)")
    p.add_argument("--cold-cache", action="store_true",
                   help="decode the JPEGs into a fresh temporary cache to time the one-time decode")
    a = p.parse_args(argv)

    print(f"machine: {machine()}")
    print(f"command: {' '.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}")
    tmp_cache = tempfile.TemporaryDirectory() if a.cold_cache else None
    if tmp_cache:
        os.environ["CNNLAB_CACHE"] = tmp_cache.name

    overrides = [f"data={a.data}", *a.set]
    if a.quick:  # the same code on a small random subset: 1 epoch on 2,048 images
        register_subset("cifar10-quick", str(a.data), {"train": 2048, "val": 500, "test": 1000})
        overrides += ["epochs=1", "data=cifar10-quick"]
    cfg = TrainConfig.from_sources(a.recipe, overrides)
    device = pick_device(cfg.device)

    # ------------------------------------------------------------------ one-time decode / cache
    before = cache_files()
    t0 = time.perf_counter()
    train = cnnlab.load_dataset(cfg.data, "train", seed=cfg.seed, **cfg.data_options())
    test = cnnlab.load_dataset(cfg.data, "test", seed=cfg.seed, **cfg.data_options())
    load_s = time.perf_counter() - t0
    decoded = cache_files() - before
    how = "JPEG decode into the cache (one-time)" if decoded else "read from the cache"
    print(f"data: {cfg.data}: {len(train):,} train, {len(test):,} test images; {how}: {load_s:.1f} s")

    # ------------------------------------------------------------------ training
    print(f"\ncnnlab: {a.recipe.relative_to(ROOT) if a.recipe.is_relative_to(ROOT) else a.recipe}"
          f"{' with ' + ' '.join(overrides[1:]) if overrides[1:] else ''}")
    print(f"  {cfg.model} {cfg.model_args}, {cfg.epochs} epochs, batch {cfg.batch_size}, {cfg.optimizer} lr {cfg.lr} "
          f"momentum {cfg.momentum} wd {cfg.weight_decay}, {cfg.schedule} {cfg.lr_cycle}, lookahead {cfg.lookahead}, "
          f"label smoothing {cfg.label_smoothing}, "
          f"flip {cfg.flip}, translate {cfg.translate}, amp {cfg.amp}, channels_last {cfg.channels_last}, "
          f"val_fraction {cfg.val_fraction}")
    test_batches = Batches(test, 1000, device, shuffle=False)
    curve, clock, last = [], [0.0], {}

    def on_epoch(row, model, task):
        clock[0] += row["seconds"]
        top1 = task.evaluate(model, test_batches, Dist())["top1"]
        curve.append({"epoch": row["epoch"], "seconds": clock[0], "top1": top1, "images_per_s": row["images_per_s"]})
        if row["epoch"] == cfg.epochs:  # the trained model, also with test-time augmentation
            last.update(tta=task.evaluate(model, test_batches, Dist(), tta=2)["top1"], seconds=clock[0])
        last.update(model=model, task=task)
        print(f"  epoch {row['epoch']:3d}  {clock[0]:7.1f} s  test top-1 {top1:.4f}  "
              f"({row['images_per_s']:,.0f} training images/s; load {os.getloadavg()[0]:.2f})", flush=True)

    with tempfile.TemporaryDirectory() as out:
        cnnlab.train(config=a.recipe, overrides=[*overrides, f"out={out}", "plots=false"],
                              on_epoch=on_epoch, log=lambda *args: None)
    model, task = last["model"], last["task"]  # after fit: the weights of best.pt (best val epoch)

    # ------------------------------------------------------------------ inference and report
    infer = {amp: inference_images_per_s(model, task, test, device, amp) for amp in (False, True)}
    print_curve(f"cnnlab {cfg.model} recipe on CIFAR-10: test accuracy vs training seconds", curve)
    n_train = sum(len(train) // cfg.batch_size * cfg.batch_size for _ in curve)
    print(f"\ntraining: {clock[0]:.1f} s for {len(curve)} epochs, {n_train / clock[0]:,.0f} images/s overall")
    from utilisation import utilisation_line  # FLOPs per image x images/s over the matmul peaks, measured now
    print(utilisation_line("utilisation", model, task, train, cfg.batch_size, n_train / clock[0],
                           use_bf16(device, cfg.amp, min(task.input_shape[1:])) and task.autocast))
    print(f"inference (test set, batch 1000): fp32 {infer[False]:,.0f} images/s (as evaluate runs), "
          f"bf16 autocast {infer[True]:,.0f} images/s (as predict runs)")
    print(f"final test top-1 {100 * curve[-1]['top1']:.2f}% single view; {100 * last['tta']:.2f}% with "
          f"test-time augmentation (airbench's: mirror + 1-pixel shifts, 6 views; `cnnlab eval --tta 2`)")
    t_bar = time_to(curve, BAR_ACCURACY)
    within = [q["top1"] for q in curve if q["seconds"] <= BAR_SECONDS]
    ok = t_bar is not None and t_bar <= BAR_SECONDS
    print(f"\nbar: >= {100 * BAR_ACCURACY:.0f}% test top-1 within {BAR_SECONDS:.0f} s of training")
    print(f"  single view: {'PASS' if ok else 'FAIL'} (" + (f"reached at {t_bar:.1f} s; " if t_bar else "not reached; ")
          + f"best within {BAR_SECONDS:.0f} s: {100 * max(within, default=float('nan')):.2f}%)")
    ok_tta = last["tta"] >= BAR_ACCURACY and last["seconds"] <= BAR_SECONDS
    print(f"  with test-time augmentation: {'PASS' if ok_tta else 'FAIL'} ({100 * last['tta']:.2f}% after "
          f"{last['seconds']:.1f} s of training)")
    print(f"data load ({how}): {load_s:.1f} s, not counted in training time")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    if tmp_cache:
        tmp_cache.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
