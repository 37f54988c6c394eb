"""Captioning plots: training curves, sample captions, and where the model looked per word."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor  # noqa: E402

from cnnlab.data.base import TensorImages  # noqa: E402
from cnnlab.tasks import curves  # noqa: E402
from cnnlab.figures import save_figure  # noqa: E402


def write_all(task, run_dir, history: list[dict], model, data) -> list[str]:
    """curves.png and captions.png (8 images of ``data`` with their generated captions)."""
    run_dir = Path(run_dir)
    n = min(8, len(data))
    if isinstance(data, TensorImages):
        images, refs = data.images[:n], data.labels[:n]
    else:
        images, refs = (torch.stack(x) for x in zip(*(data[i] for i in range(n))))
    beams = task.generate(model, images.to(next(model.parameters()).device))
    refs = refs[:, None] if refs.ndim == 2 else refs
    truth = [" ".join(task.classes[i] for i in r[0].tolist() if i > 3) for r in refs]
    paths = ([plot_curves(history, run_dir / "curves.png")] if history else []) + [
        plot_captions(images, [" ".join(b[0]["words"]) for b in beams], truth, run_dir / "captions.png")]
    return [str(p) for p in paths]


def plot_curves(history: list[dict], path: Path) -> Path:
    """Training loss and token accuracy, validation BLEU-4 and CIDEr-D, per epoch."""
    return curves.plot_curves(history, path, [
        ("teacher forcing", "", [("train_loss", "train loss"), ("train_acc", "train next-word accuracy")]),
        ("captions (beam search)", "", [("val_bleu4", "val BLEU-4"), ("val_cider", "val CIDEr-D / 10", 0.1)])])


def plot_captions(images: Tensor, captions: list[str], truth: list[str], path: Path) -> Path:
    """Images with the generated caption (bold) and one reference under each."""
    n = len(images)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, cap, ref in zip(axes.flat, images, captions, truth):
        ax.imshow(_rgb(img))
        ax.set_title(_wrap(cap), fontsize=7, fontweight="bold")
        ax.text(0.5, -0.04, _wrap(ref), transform=ax.transAxes, ha="center", va="top", fontsize=6, color="0.35")
    fig.tight_layout()
    path = save_figure(fig, path, dpi=90)
    return path


def plot_attention(image: Tensor, words: list[str], alphas: Tensor, grid: tuple[int, int], path: Path) -> Path:
    """The image under each generated word's attention map (alphas (len(words) + 1, h*w))."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = [*words, "<end>"][:len(alphas)]
    h, w = image.shape[-2:]
    maps = F.interpolate(alphas.view(-1, 1, *grid).float(), size=(h, w), mode="bilinear",
                         align_corners=False)[:, 0]  # (T, H, W)
    cols = min(6, len(labels) + 1)
    rows = -(-(len(labels) + 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(_rgb(image))
    axes.flat[0].set_title("image", fontsize=8)
    for ax, word, m in zip(list(axes.flat)[1:], labels, maps):
        ax.imshow(_rgb(image))
        ax.imshow(m.numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=float(m.max()))
        ax.set_title(word, fontsize=8)
    fig.tight_layout()
    path = save_figure(fig, path, dpi=90)
    return path


def _rgb(image: Tensor):
    x = image.permute(1, 2, 0).numpy()
    return x[..., 0] if x.shape[2] == 1 else x[..., :3]


def _wrap(text: str, width: int = 34) -> str:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + len(word) >= width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])
