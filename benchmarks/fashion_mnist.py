"""Fashion-MNIST time-to-accuracy: pytorch/examples' mnist/main.py against cnnlab's default recipe.

    python benchmarks/fashion_mnist.py            # full run: reference (2 epochs), recipe, amp table (~4 min)
    python benchmarks/fashion_mnist.py --quick    # smoke run (< 1 min): a few batches of each

Both sides train on the official 60,000 training images on this machine's CPU cores and are
scored on the official 10,000 test images; ``seconds`` is cumulative training time with test
evaluation left out (cnnlab: the trainer's per-epoch ``row["seconds"]``). The bar: the default
recipe (``recipes/fashion-mnist.yaml``) reaches 93.0% test top-1 within 60 s of training.

The amp table measures training images/s with bf16 autocast on and off (``amp: bf16/off``)
for the recipe's model at 28x28 and for the default ``lecture_cnn`` at 28x28 and on 8x8 ``digits``, through
the task's own ``training_step`` (augmentation, normalisation, forward, loss) and the optimizer.
Prints tables; appends nothing anywhere (copy the figures into RESULTS.md by hand).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

import cnnlab
from cnnlab.data.loader import Batches
from cnnlab.engine.config import TrainConfig
from cnnlab.runtime.device import autocast, bf16_supported, pick_device, use_bf16
from cnnlab.runtime.distributed import Dist
from cnnlab.engine.optim import build_optimizer
from cnnlab.tasks.base import task_class

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_mnist import train_reference  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "fashion-mnist.yaml"
BAR_ACCURACY, BAR_SECONDS = 0.930, 60.0


# ---------------------------------------------------------------------------------------------
# cnnlab's recipe, with test accuracy after each epoch
# ---------------------------------------------------------------------------------------------

def train_recipe(recipe: Path, overrides: list[str], test, log=print, keep: dict | None = None
                 ) -> tuple[list[dict], object]:
    """Train the recipe through ``cnnlab.train``; returns ``[{epoch, seconds, top1, images_per_s}]``
    (``keep``, if given, receives the last epoch's ``model`` and ``task``)."""
    curve, clock = [], [0.0]
    device = pick_device(TrainConfig.from_sources(recipe, overrides).device)
    test_batches = Batches(test, 1000, device, shuffle=False)

    def on_epoch(row, model, task):
        clock[0] += row["seconds"]
        top1 = task.evaluate(model, test_batches, Dist())["top1"]
        if keep is not None:
            keep.update(model=model, task=task)
        curve.append({"epoch": row["epoch"], "seconds": clock[0], "top1": top1,
                      "images_per_s": row["images_per_s"]})
        log(f"  cnnlab     epoch {row['epoch']:5.2f}  {clock[0]:7.1f} s  test top-1 {top1:.4f}  "
            f"({row['images_per_s']:,.0f} images/s)")

    with tempfile.TemporaryDirectory() as out:
        result = cnnlab.train(config=recipe, overrides=[f"out={out}", "plots=false", *overrides],
                              on_epoch=on_epoch, log=lambda *a: None)
    return curve, result


# ---------------------------------------------------------------------------------------------
# training images/s with and without bf16 autocast
# ---------------------------------------------------------------------------------------------

def training_images_per_s(cfg: TrainConfig, steps: int, warmup: int = 3) -> float:
    """Images/s of the trainer's step (augment, normalise, forward, loss, backward, SGD step)."""
    device = pick_device(cfg.device)
    data = cnnlab.load_dataset(cfg.data, "train", seed=cfg.seed, **cfg.data_options())
    task = task_class(cfg.task).from_data(cfg, data).in_memory_format(cfg.channels_last)
    model = task.build_model(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)
    batches = Batches(data, cfg.batch_size, device, shuffle=True, seed=cfg.seed, drop_last=True)
    bf16 = use_bf16(device, cfg.amp, min(task.input_shape[1:]))
    model.train()
    seen, t0 = 0, None
    epoch = 0
    while True:
        for step, batch in enumerate(batches.epoch(epoch)):
            if step == warmup and t0 is None:
                t0, seen = time.perf_counter(), 0
            gen = torch.Generator(device=device).manual_seed(step)
            with autocast(device, bf16):
                losses, stats = task.training_step(model, batch, gen)
            loss = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss.item()
            seen += stats["count"]
            if t0 is not None and seen >= steps * cfg.batch_size:
                return seen / (time.perf_counter() - t0)
        epoch += 1


def amp_table(recipe: Path, overrides: list[str], steps: int, log=print) -> list[dict]:
    recipe_cfg = TrainConfig.from_sources(recipe, overrides)
    args = " ".join(f"{k}={v}".replace(" ", "") for k, v in recipe_cfg.model_args.items())
    cases = [(f"{recipe_cfg.model} {args} on fashion-mnist 28x28, batch {recipe_cfg.batch_size}", recipe, overrides),
             ("lecture_cnn (defaults) on fashion-mnist 28x28, batch 128", None, ["data=fashion-mnist"]),
             ("lecture_cnn (defaults) on digits 8x8, batch 128", None, ["data=digits"])]
    rows = []
    for label, path, extra in cases:
        speeds = {}
        for amp in (False, True):
            cfg = TrainConfig.from_sources(path, [*extra, f"amp={'bf16' if amp else 'off'}"])
            speeds[amp] = training_images_per_s(cfg, steps)
        rows.append({"case": label, "fp32": speeds[False], "bf16": speeds[True]})
        log(f"  {label}: fp32 {speeds[False]:,.0f}  bf16 {speeds[True]:,.0f} images/s")
    return rows


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------

def register_subset(name: str, spec: str, sizes: dict[str, int]) -> None:
    """Register dataset ``name``: a fixed random subset of each split of ``spec`` (for --quick)."""
    from cnnlab.data.registry import register_dataset

    @register_dataset(name, description=f"a small random subset of {spec} (benchmark smoke runs)")
    def builder(split: str, seed: int = 0, **opts):
        data = cnnlab.load_dataset(spec, split, seed=seed, **opts)
        pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:sizes[split]]
        return data.subset(pick)


def time_to(curve: list[dict], accuracy: float) -> float | None:
    """Training seconds at the first measured point at or above ``accuracy`` (no interpolation)."""
    return next((p["seconds"] for p in curve if p["top1"] >= accuracy), None)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{model}; {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} "
            f"threads; bf16 autocast {'available' if bf16_supported(torch.device('cpu')) else 'not available'}; "
            f"load average {load:.2f}")


def print_curve(name: str, curve: list[dict]) -> None:
    print(f"\n{name}")
    print(f"{'epoch':>7} {'train s':>8} {'test top-1':>10}")
    for p in curve:
        print(f"{p['epoch']:7.2f} {p['seconds']:8.1f} {100 * p['top1']:9.2f}%")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: a few batches of each (< 1 min)")
    p.add_argument("--recipe", type=Path, default=RECIPE, help="the cnnlab recipe (default: %(default)s)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra recipe overrides (for tuning; a recorded run uses none)")
    p.add_argument("--skip-reference", action="store_true", help="leave out the pytorch/examples reference")
    p.add_argument("--skip-amp", action="store_true", help="leave out the fp32/bf16 images/s table")
    a = p.parse_args(argv)

    print(f"machine: {machine()}")
    print(f"command: {' '.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}")
    t_load = time.perf_counter()
    train = cnnlab.load_dataset("fashion-mnist", "train", val_fraction=0.0)  # all 60,000 official images
    test = cnnlab.load_dataset("fashion-mnist", "test")
    print(f"data: {len(train):,} train, {len(test):,} test images ({time.perf_counter() - t_load:.1f} s to load)")

    overrides = list(a.set)
    if a.quick:
        # the same code on a small random subset: 1 epoch on 3,000 images
        register_subset("fashion-mnist-quick", "fashion-mnist", {"train": 3000, "val": 500, "test": 1000})
        overrides += ["epochs=1", "data=fashion-mnist-quick"]
        test = test.subset(torch.arange(1000))
    ref = []
    if not a.skip_reference:
        print("\nreference: pytorch/examples mnist/main.py (Net, Adadelta 1.0, StepLR 0.7, batch 64, PIL per sample)")
        ref = train_reference(train.images, train.labels, test.images, test.labels, epochs=1 if a.quick else 2,
                              points_per_epoch=1 if a.quick else 4, limit_batches=40 if a.quick else None)
    print(f"\ncnnlab: {a.recipe.relative_to(ROOT) if a.recipe.is_relative_to(ROOT) else a.recipe}"
          f"{' with ' + ' '.join(overrides) if overrides else ''}")
    cfg = TrainConfig.from_sources(a.recipe, overrides)
    print(f"  {cfg.model} {cfg.model_args}, {cfg.epochs} epochs, batch {cfg.batch_size}, {cfg.optimizer} lr {cfg.lr}, "
          f"{cfg.schedule}, label smoothing {cfg.label_smoothing}, flip {cfg.flip}, translate {cfg.translate}, "
          f"amp {cfg.amp}, channels_last {cfg.channels_last}, val_fraction {cfg.val_fraction}")
    kept = {}
    ours, result = train_recipe(a.recipe, overrides, test, keep=kept)
    amp_rows = [] if a.skip_amp else amp_table(a.recipe, list(a.set), steps=3 if a.quick else 40)

    # ------------------------------------------------------------------ the tables
    if ref:
        print_curve("reference (pytorch/examples mnist/main.py): test accuracy vs training seconds", ref)
    print_curve(f"cnnlab {cfg.model} recipe: test accuracy vs training seconds", ours)
    if result.test:
        print(f"  (trainer's own final test of best.pt: {100 * result.test['top1']:.2f}%)")
    if ref:
        target = ref[-1]["top1"]
        t_ref, t_ours = ref[-1]["seconds"], time_to(ours, target)
        print(f"\ntime to the reference's final accuracy {100 * target:.2f}%: reference {t_ref:.1f} s, "
              + (f"cnnlab {t_ours:.1f} s: {t_ref / t_ours:.1f}x faster" if t_ours else "cnnlab never reached it"))
    t_bar = time_to(ours, BAR_ACCURACY)
    within = [p for p in ours if p["seconds"] <= BAR_SECONDS]
    best_within = max((p["top1"] for p in within), default=float("nan"))
    ok = t_bar is not None and t_bar <= BAR_SECONDS
    print(f"\nbar: >= {100 * BAR_ACCURACY:.1f}% test top-1 within {BAR_SECONDS:.0f} s of training: "
          f"{'PASS' if ok else 'FAIL'} (" + (f"reached at {t_bar:.1f} s; " if t_bar else "not reached; ")
          + f"best within {BAR_SECONDS:.0f} s: {100 * best_within:.2f}%)")
    from utilisation import utilisation_line  # GFLOP/image x images/s over the matmul peaks, measured now
    recipe_train = cnnlab.load_dataset(cfg.data, "train", seed=cfg.seed, **cfg.data_options())
    print(utilisation_line("utilisation (last epoch)", kept["model"], kept["task"], recipe_train, cfg.batch_size,
                           ours[-1]["images_per_s"], use_bf16(pick_device(cfg.device), cfg.amp,
                                                              min(kept["task"].input_shape[1:]))))
    if amp_rows:
        print("\ntraining images/s, fp32 vs bf16 autocast (channels_last)")
        print(f"{'case':<76} {'fp32':>8} {'bf16':>8} {'bf16/fp32':>9}")
        for r in amp_rows:
            print(f"{r['case']:<76} {r['fp32']:8,.0f} {r['bf16']:8,.0f} {r['bf16'] / r['fp32']:9.2f}")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
