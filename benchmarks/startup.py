"""How fast the command line answers: `cnnlab --help` and `cnnlab pixels IMG` as processes.

    .venv/bin/python benchmarks/startup.py            # 10 runs each, medians
    .venv/bin/python benchmarks/startup.py --runs 20

The baseline, run in the same way in the same run: a process that imports what ``cnnlab.cli``
loaded before the imports became lazy (torch, the data, the engine, the models), which every
command paid. Goals (issue 17): --help under 0.5 s, pixels under 1 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

CNNLAB = [sys.executable, "-m", "cnnlab"]
# what `import cnnlab.cli` loaded before the imports became lazy: the modules api.py imported at its top
EAGER = ("import cnnlab.cli, cnnlab.data, cnnlab.data.info, cnnlab.data.loader, cnnlab.engine.trainer, "
         "cnnlab.deploy.pytorch_model, cnnlab.deploy.onnx_model, cnnlab.models, cnnlab.runtime.distributed")


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(photo)
        cases = {
            "eager import (baseline)": [sys.executable, "-c", EAGER],
            "cnnlab --help": [*CNNLAB, "--help"],
            "cnnlab pixels IMG --size 16": [*CNNLAB, "pixels", str(photo), "--size", "16"],
        }
        print(f"load average before: {os.getloadavg()[0]:.2f}; {a.runs} runs each, median")
        results = {name: median_seconds(cmd, a.runs) for name, cmd in cases.items()}
    base = results["eager import (baseline)"]
    for name, seconds in results.items():
        print(f"  {name:30s} {seconds:6.3f} s   {base / seconds:5.1f}x faster than the eager import")
    goals = {"cnnlab --help": 0.5, "cnnlab pixels IMG --size 16": 1.0}
    for name, goal in goals.items():
        print(f"  goal {name} < {goal} s: {'PASS' if results[name] < goal else 'FAIL'} ({results[name]:.3f} s)")


if __name__ == "__main__":
    main()
