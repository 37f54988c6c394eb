"""Classification plots: training curves, confusion matrix, predictions (mistakes first) with
top-5 bars, the top-losses grid and the most confused pairs (fastai's ``ClassificationInterpretation``)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from torch import Tensor  # noqa: E402

from cnnlab.data.base import TensorImages  # noqa: E402
from cnnlab.tasks import curves  # noqa: E402
from cnnlab.tasks.error_analysis import mistakes_first, most_confused, top_losses, write_rows  # noqa: E402
from cnnlab.figures import save_figure  # noqa: E402
from cnnlab.images import to_pil  # noqa: E402

ANALYSED = 5000   # images: error analysis looks at the first this many of a split
SHOWN = 8         # rows of predictions.png
TOP_LOSSES = 9    # panels of top_losses.png (3 x 3)


def video_frame(image: Tensor, text: str) -> Tensor:
    """uint8 (3, H + 16, W): the frame above a white strip holding ``text`` (its classes)."""
    frame = to_pil(image if image.shape[0] == 3 else image[:1].expand(3, -1, -1))
    canvas = Image.new("RGB", (frame.width, frame.height + 16), (255, 255, 255))
    canvas.paste(frame, (0, 0))
    ImageDraw.Draw(canvas).text((4, frame.height + 2), text, fill=(0, 0, 0))
    return torch.from_numpy(np.array(canvas)).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)


def write_all(task, run_dir, history, model, data, metrics: dict) -> list[str]:
    """curves.png (after training), confusion_matrix.png (from ``metrics``), predictions.png
    (mistakes first), top_losses.png and most_confused.csv."""
    run_dir = Path(run_dir)
    paths = ([plot_curves(history, run_dir / "curves.png")] if history else []) + [
        plot_confusion(torch.tensor(metrics["confusion_matrix"]), task.classes, run_dir / "confusion_matrix.png")]
    logits, labels = _logits(task, model, data)
    order = mistakes_first(logits, labels)[:SHOWN]
    wrong = int((logits.argmax(1) != labels).sum())
    paths.append(plot_predictions(_images_at(data, order), labels[order], logits[order].softmax(1), task.classes,
                                  run_dir / "predictions.png",
                                  title=f"mistakes first: {wrong} of {len(labels)} images wrong"))
    losses, idx = top_losses(logits, labels, TOP_LOSSES)
    paths.append(plot_top_losses(_images_at(data, idx), labels[idx], logits[idx].softmax(1), losses, task.classes,
                                 run_dir / "top_losses.png"))
    pairs = most_confused(metrics["confusion_matrix"], task.classes)
    paths.append(write_rows(run_dir / "most_confused.csv", ["true", "predicted", "images"], pairs))
    return [str(p) for p in paths]


@torch.no_grad()
def _logits(task, model, data, limit: int = ANALYSED):
    """Float logits (N, K) and labels (N,) of the first ``limit`` items of ``data``, on the CPU."""
    from cnnlab.data.loader import Batches

    model.eval()
    device = next(model.parameters()).device
    out, labels, seen = [], [], 0
    for images, y in Batches(data, 256, device, shuffle=False, workers=0).epoch(0):
        out.append(task.logits(model, images).cpu())
        labels.append(y.cpu())
        seen += len(y)
        if seen >= limit:
            break
    return torch.cat(out)[:limit], torch.cat(labels)[:limit]


def _images_at(data, index) -> torch.Tensor:
    """uint8 (n, C, H, W) items ``index`` of ``data`` (in memory or read from files)."""
    if isinstance(data, TensorImages):
        return data.images[index]
    return torch.stack([data[i][0] for i in index.tolist()])


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


def plot_predictions(images, labels, probs, classes, path: Path, title: str = "") -> Path:
    """Each image beside its top-5 class probabilities (as on the lecture slide); the image titled
    with its true and predicted class (red when wrong), the true class's bar green, a wrong top-1 red."""
    n = len(images)
    fig, axes = plt.subplots(n, 2, figsize=(7, 1.6 * n + (0.4 if title else 0)),
                             gridspec_kw={"width_ratios": [1, 2.2]}, squeeze=False)
    for i in range(n):
        truth, pred = int(labels[i]), int(probs[i].argmax())
        _show(axes[i, 0], images[i])
        axes[i, 0].set_title(f"true: {classes[truth]}\npredicted: {classes[pred]}", fontsize=8,
                             color="black" if pred == truth else "tab:red")
        p, idx = probs[i].topk(min(5, len(classes)))
        colours = ["tab:green" if j == truth else "tab:red" if j == pred else "tab:gray" for j in idx.tolist()]
        axes[i, 1].barh(range(len(p))[::-1], p.numpy(), color=colours)
        axes[i, 1].set_yticks(range(len(p))[::-1], [classes[j] for j in idx.tolist()], fontsize=8)
        axes[i, 1].set_xlim(0, 1)
    axes[-1, 1].set_xlabel("probability (green: true class, red: wrong prediction)")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_top_losses(images, labels, probs, losses, classes, path: Path, columns: int = 3) -> Path:
    """fastai's ``plot_top_losses``: the images the model is most wrong about, each titled
    predicted (its probability) / true (its probability) / cross-entropy loss."""
    n = len(images)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.7 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        truth, pred = int(labels[i]), int(probs[i].argmax())
        _show(ax, images[i])
        ax.set_title(f"predicted {classes[pred][:14]} ({probs[i, pred]:.2f})\ntrue {classes[truth][:14]} "
                     f"({probs[i, truth]:.2f})\nloss {float(losses[i]):.2f}", fontsize=8,
                     color="black" if pred == truth else "tab:red")
    fig.suptitle("top losses: predicted (probability) / true (probability) / loss", fontsize=10)
    return _save(fig, path)


def _show(ax, image) -> None:
    img = image.permute(1, 2, 0).numpy()
    ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img[..., :3], cmap="gray", interpolation="nearest")
    ax.axis("off")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    return save_figure(fig, path, dpi=100, bbox_inches="tight")
