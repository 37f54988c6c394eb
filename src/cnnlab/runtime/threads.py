"""The CPU thread policy: OpenMP's wait policy before torch starts, the thread count while training.

Each command (``cli.main``), ``cnnlab.train`` and ``fit`` start with ``apply_thread_policy()``: unless
the user set it, ``OMP_WAIT_POLICY=PASSIVE``, so waiting threads sleep rather than spin (OpenMP reads
it once, when torch loads: the command line and ``cnnlab.train`` apply it before they import torch;
``import cnnlab`` changes nothing). On a machine doing other work the thread count matters more
(benchmarks/RESULTS.md, "Contention": beside one busy process, one thread kept 0.52 of the quiet
two-thread speed and two threads 0.38), and which count is fastest changes while a run trains, so
the trainer re-picks it by measurement (``ThreadTuner``). ``CNNLAB_THREADS=N`` (or
``OMP_NUM_THREADS``) fixes it instead.
"""
from __future__ import annotations

import os
import statistics
import time


def apply_thread_policy(environ=os.environ) -> None:
    """Set OpenMP's wait policy, and ``CNNLAB_THREADS=N``'s thread count, in ``environ`` unless set there."""
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    wanted = requested_threads(environ)
    if wanted and "OMP_NUM_THREADS" not in environ:
        environ["OMP_NUM_THREADS"] = str(wanted)


def thread_count_fixed(environ=os.environ) -> bool:
    """Whether the user chose the thread count (``CNNLAB_THREADS`` or ``OMP_NUM_THREADS``)."""
    return bool(environ.get("CNNLAB_THREADS") or environ.get("OMP_NUM_THREADS"))


def requested_threads(environ=os.environ) -> int | None:
    """``CNNLAB_THREADS=N``'s N (also when set after ``import cnnlab``), else None."""
    wanted = environ.get("CNNLAB_THREADS", "")
    return int(wanted) if wanted.isdigit() and int(wanted) > 0 else None


class ThreadTuner:
    """Re-picks torch's CPU thread count by timing training steps; call it at the start of each step.

    After ``warmup`` steps, and then every ``every`` seconds, a round times ``probe`` steps at each
    candidate count (all ``cores``, half of them, one; the first step after a switch is not counted)
    and keeps the one with the shortest median step until the next round. Beside a busy process,
    fewer threads stop waiting for a descheduled partner; on a quiet machine a round costs a few
    slower steps (~1-2% of a run). While rounds keep choosing the same count the wait between them
    doubles, up to ``longest`` seconds (a round's slow steps cost most on a crowded machine); a
    changed choice brings it back to ``every``. ``pause()`` between epochs keeps validation out of
    the timings.
    """

    def __init__(self, cores: int, every: float = 30.0, probe: int = 4, warmup: int = 3,
                 longest: float = 240.0, set_threads=None):
        import torch

        self.candidates = sorted({cores, max(1, cores // 2), 1}, reverse=True)
        self.every, self.probe, self.warmup, self.longest = every, probe, warmup, longest
        self.wait = every                        # seconds from the end of a round to the next one
        self.set_threads = set_threads or torch.set_num_threads
        self.chosen = cores
        self.plan: list[tuple[int, bool]] = []   # (threads, counted) for the coming steps of a round
        self.times: dict[int, list[float]] = {}
        self.current: tuple[int, bool] | None = None
        self.steps, self.last, self.next_round = 0, None, None
        self.history: list[int] = []             # the count chosen by each round

    def pause(self) -> None:
        """The time until the next call is not a training step's (validation, checkpointing)."""
        self.last = None

    def __call__(self) -> None:
        now = time.perf_counter()
        if self.last is not None and self.current and self.current[1]:
            self.times.setdefault(self.current[0], []).append(now - self.last)
        self.last, self.steps = now, self.steps + 1
        if not self.plan and self.times:  # a round just ended: keep the fastest
            self.chosen = min(self.times, key=lambda n: statistics.median(self.times[n]))
            same = bool(self.history) and self.history[-1] == self.chosen
            self.wait = min(2 * self.wait, self.longest) if same else self.every
            self.history.append(self.chosen)
            self.times.clear()
            self.current, self.next_round = None, now + self.wait
            self.set_threads(self.chosen)
        elif not self.plan and self.steps > self.warmup and (self.next_round is None or now >= self.next_round):
            self.plan = [(n, i > 0) for n in self.candidates for i in range(self.probe + 1)]
        if self.plan:
            self.current = self.plan.pop(0)
            self.set_threads(self.current[0])
