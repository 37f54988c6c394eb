"""Training throughput on a busy machine: the Fashion-MNIST recipe quiet and beside CPU-bound
processes this benchmark starts itself, for each OpenMP thread policy, in one run.

    .venv/bin/python benchmarks/contention.py            # ~10 minutes on 2 cores
    .venv/bin/python benchmarks/contention.py --policies passive,spin --busy 0,1

Each cell trains the recipe (recipes/fashion-mnist.yaml) for 2 epochs on a 12,000-image subset
of Fashion-MNIST in a fresh process and reads the second epoch's training images/s from the run's
metrics.json. Competitors are Python processes spinning on one core each. The policies:

    spin      OMP_WAIT_POLICY=ACTIVE, threads = cores: OpenMP's threads spin while they wait
    passive   OMP_WAIT_POLICY=PASSIVE, threads = cores: waiting threads sleep (cnnlab's default)
    one       OMP_NUM_THREADS=1
    adapt     PASSIVE, threads = cores less the busy ones seen at start (load average), at least 1

Ratios are against the same policy's quiet figure and against the spin policy's quiet figure.
Needs Fashion-MNIST (Debian package dataset-fashion-mnist).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")
POLICIES = {
    "spin": {"OMP_WAIT_POLICY": "ACTIVE"},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "one": {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"},
    "adapt": {"OMP_WAIT_POLICY": "PASSIVE", "CNNLAB_THREADS": "adapt"},
}


def write_subset(out: Path, n_train: int = 12_000, n_test: int = 2_000, seed: int = 0) -> Path:
    """A random subset of Fashion-MNIST as IDX .gz files in ``out`` (the layout cnnlab reads)."""
    from cnnlab.data.idx import read_idx

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


def train_rate(data: Path, env_extra: dict, work: Path) -> float:
    """Training images/s of epoch 2 of the recipe, in a fresh process with ``env_extra``."""
    out = work / f"run-{time.monotonic_ns()}"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env.update(env_extra)
    cmd = [str(ROOT / ".venv" / "bin" / "cnnlab"), "train", "--config", str(ROOT / "recipes" / "fashion-mnist.yaml"),
           "--data", str(data), "--epochs", "2", "--no-plots", "--out", str(out)]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
    rows = json.loads((out / "metrics.json").read_text())["epochs"]
    return rows[-1]["images_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--busy", default="0,1,2", help="numbers of competing busy processes")
    a = ap.parse_args()
    if not FASHION.is_dir():
        sys.exit(f"benchmark: {FASHION} missing (apt-get install dataset-fashion-mnist)")
    policies, busy = a.policies.split(","), [int(b) for b in a.busy.split(",")]
    print(f"CPU: {_cpu()}; {os.cpu_count()} cores; load before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = write_subset(work / "fm12k")
        table = {}
        for n in busy:
            competitors = [spinner() for _ in range(n)]
            time.sleep(2 if n else 0)  # let the load average see them (the adapt policy reads it)
            try:
                for policy in policies:
                    table[policy, n] = train_rate(data, POLICIES[policy], work)
                    print(f"  {policy:8s} busy {n}: {table[policy, n]:8.0f} images/s", flush=True)
            finally:
                for c in competitors:
                    c.kill()
                    c.wait()
    base = table.get(("spin", 0))
    print(f"\n| policy | {' | '.join(f'busy {n}' for n in busy)} |")
    print(f"|---|{'---|' * len(busy)}")
    for policy in policies:
        quiet = table[policy, busy[0]]
        cells = [f"{table[policy, n]:.0f} ({table[policy, n] / quiet:.2f} of own quiet"
                 + (f", {table[policy, n] / base:.2f} of spin quiet)" if base else ")") for n in busy]
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
