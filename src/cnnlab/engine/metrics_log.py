"""Per-epoch metrics to ``metrics.csv`` and ``metrics.json`` in the run folder."""
from __future__ import annotations

import csv
from pathlib import Path

from cnnlab.files import replacing, write_json


class MetricsLog:
    """The rows so far (a resumed run starts from its checkpoint's history), rewritten per epoch
    through a temporary file and a rename (``cnnlab.files``): a reader or a kill never sees half a
    file, and a link planted at either name is replaced, not written through."""

    def __init__(self, out: Path, rows: list[dict] = ()):
        self.out = Path(out)
        self.rows: list[dict] = list(rows)

    def append(self, row: dict) -> None:
        self.rows.append(row)
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        with replacing(self.out / "metrics.csv", "w") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)
        write_json(self.out / "metrics.json", {"epochs": self.rows})

    def write_summary(self, best: dict, test: dict | None) -> None:
        write_json(self.out / "metrics.json", {"epochs": self.rows, "best_val": best, "test": test})
