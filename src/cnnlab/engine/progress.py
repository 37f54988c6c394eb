"""A one-line progress bar with loss, accuracy and images/s (plain lines when not a TTY)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, title: str, total: int, enabled: bool = True, stream=None):
        self.title, self.total, self.enabled = title, max(total, 1), enabled
        self.stream = stream or sys.stderr
        self.tty = self.enabled and self.stream.isatty()
        self.done, self.stats, self._last = 0, {}, 0.0

    def update(self, stats) -> None:
        """One more step done; ``stats()`` (loss, acc, img_s) is called only when the line redraws."""
        self.done += 1
        now = time.perf_counter()
        if self.tty and (now - self._last > 0.1 or self.done == self.total):
            self._last = now
            self.stats = stats()
            width = 24
            filled = int(width * self.done / self.total)
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r{self.title} [{bar}] {self.done}/{self.total} {self._fmt()}")
            self.stream.flush()

    def close(self, suffix: str = "") -> None:
        if not self.enabled:
            return
        line = f"{self.title}: {self._fmt()}  {suffix}".rstrip()
        self.stream.write(("\r" + line + " " * 10 + "\n") if self.tty else line + "\n")
        self.stream.flush()

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
