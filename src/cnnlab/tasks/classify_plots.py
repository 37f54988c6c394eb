"""Classification plots: training curves, confusion matrix, sample predictions with top-5 bars."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from cnnlab.data.base import TensorImages  # noqa: E402
from cnnlab.tasks import curves  # noqa: E402
from cnnlab.figures import save_figure  # noqa: E402


def write_all(task, run_dir, history, model, data, metrics: dict) -> list[str]:
    """curves.png (after training), confusion_matrix.png (from ``metrics``) and predictions.png."""
    run_dir = Path(run_dir)
    paths = ([plot_curves(history, run_dir / "curves.png")] if history else []) + [
        plot_confusion(torch.tensor(metrics["confusion_matrix"]), task.classes, run_dir / "confusion_matrix.png")]
    images, labels = _sample(data, 8)
    model.eval()
    probs = task.logits(model, images.to(next(model.parameters()).device)).softmax(1).cpu()
    paths.append(plot_predictions(images, labels, probs, task.classes, run_dir / "predictions.png"))
    return [str(p) for p in paths]


def plot_curves(history: list[dict], path: Path) -> Path:
    """Loss and accuracy per epoch, train against val."""
    return curves.plot_curves(history, path, [
        ("loss", "cross-entropy loss", [("train_loss", "train"), ("val_loss", "val")]),
        ("accuracy", "accuracy", [("train_acc", "train"), ("val_top1", "val top-1")])])


def plot_confusion(confusion: torch.Tensor, classes: list[str], path: Path) -> Path:
    """Rows: true class; columns: predicted class; counts in the cells."""
    k = len(classes)
    size = min(4 + 0.45 * k, 16)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(confusion.numpy(), cmap="Blues")
    if k <= 20:
        ax.set_xticks(range(k), classes, rotation=90)
        ax.set_yticks(range(k), classes)
        top = confusion.max().item() or 1
        for i in range(k):
            for j in range(k):
                v = int(confusion[i, j])
                if v:
                    ax.text(j, i, v, ha="center", va="center", fontsize=8,
                            color="white" if v > top / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    return _save(fig, path)


def plot_predictions(images, labels, probs, classes, path: Path) -> Path:
    """Each image beside its top-5 class probabilities (as on the lecture slide)."""
    n = len(images)
    fig, axes = plt.subplots(n, 2, figsize=(7, 1.6 * n), gridspec_kw={"width_ratios": [1, 2.2]})
    axes = axes.reshape(n, 2)
    for i in range(n):
        img = images[i].permute(1, 2, 0).numpy()
        axes[i, 0].imshow(img.squeeze(-1) if img.shape[-1] == 1 else img[..., :3], cmap="gray",
                          interpolation="nearest")
        axes[i, 0].set_title(f"true: {classes[labels[i]]}", fontsize=8)
        axes[i, 0].axis("off")
        p, idx = probs[i].topk(min(5, len(classes)))
        colours = ["tab:green" if j == labels[i] else "tab:gray" for j in idx.tolist()]
        axes[i, 1].barh(range(len(p))[::-1], p.numpy(), color=colours)
        axes[i, 1].set_yticks(range(len(p))[::-1], [classes[j] for j in idx.tolist()], fontsize=8)
        axes[i, 1].set_xlim(0, 1)
    axes[-1, 1].set_xlabel("probability")
    return _save(fig, path)


def _sample(data, n: int):
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(data), generator=g)[:n]
    if isinstance(data, TensorImages):
        return data.images[idx], data.labels[idx]
    items = [data[i] for i in idx.tolist()]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    path = save_figure(fig, path, dpi=100)
    return path
