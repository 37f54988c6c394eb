"""Per-epoch metrics to ``metrics.csv`` and ``metrics.json`` in the run folder."""
from __future__ import annotations

import csv
import json
from pathlib import Path


class MetricsLog:
    """The rows so far (a resumed run starts from its checkpoint's history), rewritten per epoch."""

    def __init__(self, out: Path, rows: list[dict] = ()):
        self.out = Path(out)
        self.rows: list[dict] = list(rows)

    def append(self, row: dict) -> None:
        self.rows.append(row)
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        tmp = self.out / "metrics.csv.tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)
        tmp.replace(self.out / "metrics.csv")  # a reader (or a kill) never sees half a file
        self._write_json({"epochs": self.rows})

    def write_summary(self, best: dict, test: dict | None) -> None:
        self._write_json({"epochs": self.rows, "best_val": best, "test": test})

    def _write_json(self, payload: dict) -> None:
        tmp = self.out / "metrics.json.tmp"
        tmp.write_text(json.dumps(payload, indent=2))
        tmp.replace(self.out / "metrics.json")
