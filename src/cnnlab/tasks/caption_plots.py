"""Captioning plots: training curves, sample captions, the lowest-scoring captions, and where the
model looked per word."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor  # noqa: E402

from cnnlab.data.base import TensorImages  # noqa: E402
from cnnlab.data.caption_text import PAD_ID  # noqa: E402
from cnnlab.tasks import curves  # noqa: E402
from cnnlab.figures import save_figure  # noqa: E402
from cnnlab.files import replacing  # noqa: E402


ANALYSED = 256  # images of the split whose captions error analysis scores


def write_all(task, run_dir, history: list[dict], model, data) -> list[str]:
    """curves.png, captions.png (8 images of ``data`` with their generated captions) and the error
    analysis: worst_captions.png (the lowest CIDEr-D captions beside their references) and
    worst_captions.csv (every analysed image's caption and score, lowest first)."""
    run_dir = Path(run_dir)
    n = min(ANALYSED, len(data))
    if isinstance(data, TensorImages):
        images, refs = data.images[:n], data.labels[:n]
    else:
        images, refs = (torch.stack(x) for x in zip(*(data[i] for i in range(n))))
    device = next(model.parameters()).device
    captions = [" ".join(b[0]["words"]) for start in range(0, n, 64)
                for b in task.generate(model, images[start:start + 64].to(device))]
    refs = refs[:, None] if refs.ndim == 2 else refs
    references = [[" ".join(task.classes[i] for i in r.tolist() if i > 3) for r in image_refs
                   if r[0] != PAD_ID] for image_refs in refs]  # all <pad>: a missing reference
    paths = ([plot_curves(history, run_dir / "curves.png")] if history else []) + [
        plot_captions(images[:8], captions[:8], [r[0] for r in references[:8]], run_dir / "captions.png")]
    paths += worst_captions(images, captions, references, run_dir)
    return [str(p) for p in paths]


def worst_captions(images: Tensor, captions: list[str], references: list[list[str]], run_dir: Path,
                   n: int = 8) -> list[Path]:
    """The ``n`` captions with the lowest CIDEr-D, each image titled with its caption and score and
    two human references under it; and the CSV of every image, lowest score first."""
    import csv

    from cnnlab.tasks.caption_metrics import cider_per_image

    scores = cider_per_image(captions, references)
    order = sorted(range(len(captions)), key=lambda i: scores[i])
    with replacing(run_dir / "worst_captions.csv", "w") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "cider_d", "caption", "references"])
        writer.writerows([i, round(scores[i], 4), captions[i], " | ".join(references[i])] for i in order)
    worst = order[:n]
    cols = min(4, len(worst))
    rows = -(-len(worst) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 4.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, worst):
        ax.imshow(_rgb(images[i]))
        ax.set_title(f"CIDEr-D {scores[i]:.2f}\n" + _wrap(captions[i]), fontsize=7, fontweight="bold")
        ax.text(0.5, -0.04, "\n".join(_wrap(r) for r in references[i][:2]), transform=ax.transAxes, ha="center",
                va="top", fontsize=6, color="0.35")
    fig.suptitle("lowest-scoring captions (bold) and two human references", fontsize=9)
    fig.tight_layout()
    return [save_figure(fig, run_dir / "worst_captions.png", dpi=90), run_dir / "worst_captions.csv"]


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
