"""Training curves for every task: panels of per-epoch series from the trainer's history.

    plot_curves(history, "run/curves.png", [
        ("loss", "cross-entropy", [("train_loss", "train"), ("val_loss", "val")]),
        ("accuracy", "", [("train_acc", "train"), ("val_top1", "val top-1")]),
    ])

A series is ``(history key, legend label)`` or ``(key, label, scale)``; an epoch that lacks the
key leaves a gap. The epoch axis has whole-number ticks and half an epoch of margin, so a
one-epoch run shows one point at epoch 1, not an axis from 0.96 to 1.04.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from cnnlab.figures import save_figure  # noqa: E402


def plot_curves(history: list[dict], path: str | Path, panels: list[tuple], ylim: tuple | None = None) -> Path:
    """One panel per ``(title, y label, series)``; ``ylim`` applies to the last panel (scores in 0..1)."""
    path = Path(path)
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.5), squeeze=False)
    for ax, (title, ylabel, series) in zip(axes[0], panels):
        for key, label, *scale in series:
            s = scale[0] if scale else 1.0
            ax.plot(epochs, [r[key] * s if r.get(key) is not None else float("nan") for r in history],
                    "o-", label=label)
        ax.set(xlabel="epoch", ylabel=ylabel, title=title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # whole epochs, even after one
        if epochs:
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if ylim:
        axes[0][-1].set_ylim(*ylim)
    fig.tight_layout()
    path = save_figure(fig, path, dpi=100)
    return path
