"""Training throughput on a busy machine: the Fashion-MNIST recipe quiet and beside CPU-bound
processes this benchmark starts itself, for each CPU thread policy, in one run.

    .venv/bin/python benchmarks/contention.py            # ~15 minutes on 2 cores
    .venv/bin/python benchmarks/contention.py --policies passive,tune --busy 0,1
    .venv/bin/python benchmarks/contention.py --policies passive,tune --busy 0 --repeat 3   # the quiet cost, medians

Each cell trains the recipe (recipes/fashion-mnist.yaml) for 3 epochs on Fashion-MNIST
(``--train-images`` of it) in a fresh process and reads the training images/s of epochs 2-3 from
the run's metrics.json (epoch 1 holds the start-up; ~30 s of later epochs hold about one of the
tuner's probing rounds, as a long run would). Competitors are Python processes spinning on one
core each. The policies:

    spin      OMP_WAIT_POLICY=ACTIVE, threads = cores: OpenMP's threads spin while they wait
    passive   OMP_WAIT_POLICY=PASSIVE, threads = cores: waiting threads sleep
    one       one thread
    tune      PASSIVE, and the trainer re-picks the thread count by timing steps (cnnlab's default)

Ratios are against the same policy's quiet figure and against the first policy's quiet figure.
Needs Fashion-MNIST (Debian package dataset-fashion-mnist).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")
CORES = str(os.cpu_count() or 1)
POLICIES = {
    "spin": {"OMP_WAIT_POLICY": "ACTIVE", "CNNLAB_THREADS": CORES},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE", "CNNLAB_THREADS": CORES},
    "one": {"OMP_WAIT_POLICY": "PASSIVE", "CNNLAB_THREADS": "1"},
    "tune": {"OMP_WAIT_POLICY": "PASSIVE"},
}

def write_subset(out: Path, n_train: int = 60_000, n_test: int = 2_000, seed: int = 0) -> Path:
    """A random subset of Fashion-MNIST as IDX .gz files in ``out`` (the layout cnnlab reads)."""
    from cnnlab.data.formats.idx import read_idx

    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", n_train), ("t10k", n_test)):
        images = read_idx(FASHION / f"{part}-images-idx3-ubyte.gz")
        labels = read_idx(FASHION / f"{part}-labels-idx1-ubyte.gz")
        keep = np.sort(rng.choice(len(images), n, replace=False))
        for kind, array, magic in (("images-idx3", images[keep], 0x0803), ("labels-idx1", labels[keep], 0x0801)):
            header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
            (out / f"{part}-{kind}-ubyte.gz").write_bytes(gzip.compress(header + array.tobytes(), 1))
    return out


def spinner() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def train_rate(data: Path, env_extra: dict, work: Path) -> tuple[float, list[int]]:
    """Training images/s of epochs 2-3 of the recipe, in a fresh process with ``env_extra``, and the
    thread count each epoch ended with."""
    out = work / f"run-{time.monotonic_ns()}"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "CNNLAB_THREADS")}
    env.update(env_extra)
    cmd = [str(ROOT / ".venv" / "bin" / "cnnlab"), "train", "--config", str(ROOT / "recipes" / "fashion-mnist.yaml"),
           "--data", str(data), "--epochs", "3", "--no-plots", "--out", str(out)]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
    epochs = json.loads((out / "metrics.json").read_text())["epochs"]
    rows = epochs[1:]
    return (sum(r["images_per_s"] * r["seconds"] for r in rows) / sum(r["seconds"] for r in rows),
            [r.get("threads", 0) for r in epochs])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--busy", default="0,1,2", help="numbers of competing busy processes")
    ap.add_argument("--policies", default="passive,one,tune", help=f"of {','.join(POLICIES)}")
    ap.add_argument("--train-images", type=int, default=60_000, help="training images (a random subset)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per cell, policies taking turns; the median is kept")
    a = ap.parse_args()
    if not FASHION.is_dir():
        sys.exit(f"benchmark: {FASHION} missing (apt-get install dataset-fashion-mnist)")
    policies, busy = a.policies.split(","), [int(b) for b in a.busy.split(",")]
    print(f"CPU: {_cpu()}; {os.cpu_count()} cores; load before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = write_subset(work / "fashion", a.train_images)
        table = {}
        for n in busy:
            competitors = [spinner() for _ in range(n)]
            time.sleep(1 if n else 0)
            try:
                rates = {policy: [] for policy in policies}
                for _ in range(a.repeat):
                    for policy in policies:
                        rate, threads = train_rate(data, POLICIES[policy], work)
                        rates[policy].append(rate)
                        print(f"  {policy:8s} busy {n}: {rate:8.0f} images/s (threads at each epoch's end: "
                              f"{', '.join(map(str, threads))})", flush=True)
                for policy in policies:
                    table[policy, n] = statistics.median(rates[policy])
            finally:
                for c in competitors:
                    c.kill()
                    c.wait()
    base = table.get((policies[0], busy[0]))
    print(f"\n| policy | {' | '.join(f'busy {n}' for n in busy)} |")
    print(f"|---|{'---|' * len(busy)}")
    for policy in policies:
        quiet = table[policy, busy[0]]
        cells = [f"{table[policy, n]:.0f} ({table[policy, n] / quiet:.2f} of own quiet"
                 + (f", {table[policy, n] / base:.2f} of {policies[0]} quiet)" if base else ")") for n in busy]
        print(f"| {policy} | {' | '.join(cells)} |")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
