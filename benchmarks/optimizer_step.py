"""The optimizer's share of a training step: each recipe's optimizer step, per-parameter loop
against foreach against fused, in one run.

    python benchmarks/optimizer_step.py                       # every recipe whose data is here
    python benchmarks/optimizer_step.py --recipes cifar10 fashion-mnist

For each recipe the trainer's own set-up builds the model and optimizer (as ``cnnlab train
--config recipes/NAME.yaml`` does); every trainable parameter gets a random gradient and the
recipe's optimizer (SGD with Nesterov momentum or AdamW, its groups and hyperparameters) is rebuilt
with each implementation and stepped ``--steps`` times: the median milliseconds per step are
printed with the ratio to the loop. cnnlab keeps torch's default (the loop on the CPU): on this
2-core CPU fused and foreach measured no faster (benchmarks/RESULTS.md, "Utilisation"), the
optimizer being ~0.1% of a step. Timings mean something only on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from utilisation import ROOT, recipe_data, recipes_here

IMPLEMENTATIONS = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def step_ms(optimizer: torch.optim.Optimizer, steps: int) -> float:
    for _ in range(3):
        optimizer.step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def bench(name: str, steps: int) -> dict:
    from cnnlab.engine.config import TrainConfig
    from cnnlab.engine.trainer import setup
    from cnnlab.errors import CnnlabError
    from cnnlab.runtime.device import pick_device
    from cnnlab.runtime.distributed import Dist

    recipe = ROOT / "recipes" / f"{name}.yaml"
    data = recipe_data(TrainConfig.from_sources(recipe))
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig.from_sources(recipe, [f"out={out}", "plots=false", *([f"data={data}"] if data else [])])
        try:
            run = setup(cfg, Dist(), pick_device(cfg.device), None, lambda *a, **k: None)
        except (CnnlabError, FileNotFoundError) as e:
            return {"recipe": name, "skip": f"data absent or unreadable: {e}".splitlines()[0]}
    params = [p for g in run.optimizer.param_groups for p in g["params"]]
    for p in params:
        p.grad = torch.randn_like(p)
    groups = [{k: v for k, v in g.items() if k not in ("fused", "foreach")} for g in run.optimizer.param_groups]
    kind = type(run.optimizer)
    ms = {impl: step_ms(kind(groups, **kw), steps) for impl, kw in IMPLEMENTATIONS.items()}
    return {"recipe": name, "optimizer": kind.__name__, "tensors": len(params),
            "parameters": sum(p.numel() for p in params), **ms}


def main(argv: list[str] | None = None) -> int:
    available = recipes_here()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipes", nargs="+", default=available, choices=available, metavar="NAME")
    p.add_argument("--steps", type=int, default=30, help="timed optimizer steps per implementation (default 30)")
    a = p.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.processor() or platform.machine()}; {os.cpu_count()} CPUs; torch {torch.__version__} "
          f"with {torch.get_num_threads()} threads; load average {load:.2f}", flush=True)
    print("| recipe | optimizer | tensors | parameters | loop ms | foreach ms | fused ms | fused vs loop |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for name in a.recipes:
        r = bench(name, a.steps)
        if "skip" in r:
            print(f"| {name} | skipped: {r['skip']} |  |  |  |  |  |  |", flush=True)
            continue
        print(f"| {name} | {r['optimizer']} | {r['tensors']} | {r['parameters']:,} | {r['loop']:.2f} | "
              f"{r['foreach']:.2f} | {r['fused']:.2f} | {r['loop'] / r['fused']:.1f}x faster |", flush=True)
    if hasattr(os, "getloadavg"):
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
