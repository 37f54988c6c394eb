"""Training progress: a tqdm bar per epoch (elapsed, ETA of the epoch and of the run, loss,
accuracy, images/s) and one for validation; on a stream that is not a terminal (CI logs, pipes),
one plain line per epoch instead. ``ProgressBar`` is the callback that draws them while ``fit`` trains."""
from __future__ import annotations

import sys
import time

from cnnlab.engine.callbacks import Callback, EpochEnd


class Progress:
    """One epoch's progress. ``run_eta(fraction)`` gives the seconds left in the whole run when
    this epoch is ``fraction`` done (None: unknown)."""

    def __init__(self, title: str, total: int, enabled: bool = True, stream=None, run_eta=None):
        self.title, self.total, self.enabled = title, max(total, 1), enabled
        self.stream = stream or sys.stderr
        self.run_eta = run_eta
        self.done, self.stats, self._last = 0, {}, 0.0
        self.started = time.perf_counter()
        self.bar = None
        if self.enabled and _is_terminal(self.stream):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=title, unit="step", file=self.stream, leave=False,
                            dynamic_ncols=True, bar_format="{desc} {percentage:3.0f}%|{bar}| {n}/{total} "
                                                          "[{elapsed}<{remaining}{postfix}]")

    def update(self, stats) -> None:
        """One more step done; ``stats()`` (loss, acc, img_s) is called only when the line redraws."""
        self.done += 1
        if self.bar is None:
            return
        now = time.perf_counter()
        if now - self._last > 0.5 or self.done == self.total:
            self._last = now
            self.stats = stats()
            self.bar.set_postfix_str(self._fmt() + self._eta(self.done / self.total), refresh=False)
        self.bar.update(1)

    def validating(self, batches):
        """``batches`` with a validation bar over its steps (on a terminal), for ``task.evaluate``."""
        return _Tracked(batches, self) if self.bar is not None else batches

    def close(self, suffix: str = "") -> None:
        if self.bar is not None:
            self.bar.close()
        if not self.enabled:
            return
        line = f"{self.title}: {self._fmt()}  {suffix}".rstrip()
        self.stream.write(line + "\n")
        self.stream.flush()

    def _eta(self, fraction: float) -> str:
        seconds = self.run_eta(fraction) if self.run_eta else None
        return f", run ETA {_clock(seconds)}" if seconds is not None else ""

    def _fmt(self) -> str:
        s = self.stats
        parts = []
        if "loss" in s:
            parts.append(f"loss {s['loss']:.4f}")
        if "acc" in s:
            parts.append(f"acc {s['acc']:.4f}")
        if "img_s" in s:
            parts.append(f"{s['img_s']:.0f} img/s")
        return " ".join(parts)


class _Tracked:
    """Batches whose ``epoch()`` advances a validation bar; everything else is the batches'."""

    def __init__(self, batches, progress: Progress):
        self._batches, self._progress = batches, progress

    def __getattr__(self, name):
        return getattr(self._batches, name)

    def epoch(self, *args, **kwargs):
        from tqdm.auto import tqdm

        steps = self._batches.steps_per_epoch()
        with tqdm(total=steps, desc=f"{self._progress.title} validation", unit="step", leave=False,
                  file=self._progress.stream, dynamic_ncols=True) as bar:
            for batch in self._batches.epoch(*args, **kwargs):
                yield batch
                bar.update(1)


class ProgressBar(Callback):
    """Each epoch's progress line: steps, running loss/accuracy/img/s and the run's ETA, then the
    validation bar, closed with the task's val metrics (``*``: the best so far)."""

    def __init__(self, stream=None):
        self.stream = stream
        self.progress: Progress | None = None
        self.epoch_walls: list[float] = []  # this process's wall seconds per epoch (for the ETA)

    def on_epoch_start(self, run, epoch: int) -> None:
        started = time.perf_counter()
        self.progress = Progress(f"epoch {epoch + 1}/{run.cfg.epochs}", run.steps, stream=self.stream,
                                 run_eta=run_eta(self.epoch_walls, run.cfg.epochs, epoch, started))

    def on_step_end(self, run, step: int, loss, running) -> None:
        self.progress.update(running)  # read only when the line redraws

    def on_validation(self, run, batches):
        return self.progress.validating(batches)

    def on_epoch_end(self, run, end: EpochEnd) -> None:
        self.progress.stats = end.train
        self.progress.close(f"val {run.task.epoch_line(end.val)}" + ("  *" if end.improved else ""))
        self.epoch_walls.append(time.perf_counter() - self.progress.started)


def run_eta(done_seconds: list[float], epochs: int, epoch: int, started: float):
    """A ``run_eta`` for epoch ``epoch`` (0-based) of ``epochs``: the finished epochs' mean wall
    time (``done_seconds``, validation included) times the epochs left; before any has finished,
    extrapolated from this one."""

    def eta(fraction: float) -> float | None:
        left = epochs - epoch - fraction
        if done_seconds:
            return left * sum(done_seconds) / len(done_seconds)
        elapsed = time.perf_counter() - started
        return left * elapsed / fraction if fraction > 0.05 else None

    return eta


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-like stream without isatty
        return False
