"""The CPU thread policy, applied before torch starts OpenMP (``import cnnlab`` does it).

Waiting threads sleep rather than spin: ``OMP_WAIT_POLICY=PASSIVE`` unless the user set it. On a
busy machine the thread count matters more (benchmarks/RESULTS.md, "Contention": one thread kept
0.52 of the quiet two-thread speed beside a busy process, two threads 0.38), so ``CNNLAB_THREADS``
picks it: a number, or ``adapt`` (the cores left idle right now, measured over 0.1 s), or unset
(torch's own choice: one per core).
"""
from __future__ import annotations

import os
import time


def apply_thread_policy(environ=os.environ) -> None:
    """Set OpenMP's wait policy and thread count in ``environ`` unless already set there."""
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    wanted = environ.get("CNNLAB_THREADS", "")
    if wanted and "OMP_NUM_THREADS" not in environ:
        n = idle_cores() if wanted == "adapt" else int(wanted) if wanted.isdigit() and int(wanted) > 0 else None
        if n:
            environ["OMP_NUM_THREADS"] = str(n)


def idle_cores(seconds: float = 0.1) -> int:
    """Cores not busy with other work over the next ``seconds`` (at least 1), from /proc/stat."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # all jiffies, idle + iowait

    cores = os.cpu_count() or 1
    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except OSError:  # no /proc (macOS, Windows): all cores
        return cores
    busy = cores * (1 - (idle1 - idle0) / max(total1 - total0, 1))
    return max(1, cores - round(busy))
