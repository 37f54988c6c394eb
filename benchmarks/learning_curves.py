"""Learning curves of finished runs in one figure: each run's val score against its minutes of
training (the trainer's per-epoch ``seconds`` in ``metrics.csv``, summed), with a goal line.

    python benchmarks/learning_curves.py RUN_DIR... --out curves.png --goal 0.73 --minutes 45
    python benchmarks/learning_curves.py /tmp/cv/run1=Lite0 /tmp/cv/run2=Lite2 --out docs/figures/x.png

A label after ``=`` names a run; without one the run is named by its config (model, backbone).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def curve(run: Path) -> tuple[list[float], list[float]]:
    """Cumulative training minutes and val score after each epoch."""
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    minutes, total = [], 0.0
    for row in rows:
        total += float(row["seconds"]) / 60
        minutes.append(total)
    return minutes, [float(row["val_score"]) for row in rows]


def label(run: Path) -> str:
    cfg = json.loads((run / "config.json").read_text())
    extra = f", ema {cfg['ema']}" if cfg.get("ema") else ""
    return f"{cfg['model']} / {cfg.get('backbone') or 'own'}{extra}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run folders (RUN or RUN=LABEL)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--goal", type=float, help="draw the val goal")
    p.add_argument("--minutes", type=float, help="draw the training-time budget")
    p.add_argument("--metric", default="val mIoU")
    a = p.parse_args(argv)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for item in a.runs:
        path, _, name = item.partition("=")
        minutes, scores = curve(Path(path))
        best = max(range(len(scores)), key=scores.__getitem__)
        ax.plot(minutes, scores, marker=".", label=f"{name or label(Path(path))}: best {scores[best]:.3f}")
        print(f"{name or label(Path(path))}: {len(scores)} epochs, {minutes[-1]:.1f} min, best {scores[best]:.4f} "
              f"at epoch {best + 1} ({minutes[best]:.1f} min), last {scores[-1]:.4f}")
    if a.goal:
        ax.axhline(a.goal, color="grey", ls="--", lw=1, label=f"goal {a.goal}")
    if a.minutes:
        ax.axvline(a.minutes, color="grey", ls=":", lw=1, label=f"{a.minutes:g} minutes")
    ax.set_xlabel("minutes of training (2 CPU cores)")
    ax.set_ylabel(a.metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
