"""Segmentation pictures: colour masks with a legend, overlays, per-class IoU bars, sample panels,
and the error analysis: the images with the lowest IoU beside their masks."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from torch import Tensor  # noqa: E402

from cnnlab.data.masks import IGNORE, colorize  # noqa: E402
from cnnlab.files import make_folder  # noqa: E402
from cnnlab.images import save_pil, to_pil  # noqa: E402
from cnnlab.tasks import curves  # noqa: E402
from cnnlab.figures import save_figure  # noqa: E402

SWATCH = 12   # pixels: legend colour box
ROW = 16      # pixels: legend row height
SAMPLES = 4   # image / truth / prediction rows in predictions.png and worst_iou.png
ANALYSED = 2000  # images of a split whose IoU error analysis measures
MIN_WIDTH = 256  # pixels: narrower predictions are enlarged (nearest-neighbour) for display


# ---------------------------------------------------------------------- predict output
def with_legend(color_mask: Tensor, mask: Tensor, classes: list[str], colors: list) -> Image.Image:
    """The colour mask with a legend strip below: a swatch and name per class present."""
    present = [i for i in torch.unique(mask).tolist() if i != IGNORE and i < len(classes)]
    img = to_pil(color_mask)
    font = ImageFont.load_default()
    col_w = 8 + SWATCH + 6 * max((len(classes[i]) for i in present), default=4)
    per_row = max(1, img.width // col_w)
    rows = -(-len(present) // per_row)
    canvas = Image.new("RGB", (img.width, img.height + rows * ROW + 4), (255, 255, 255))
    canvas.paste(img, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for n, i in enumerate(present):
        x, y = 4 + (n % per_row) * col_w, img.height + 2 + (n // per_row) * ROW
        draw.rectangle([x, y + 2, x + SWATCH, y + 2 + SWATCH], fill=tuple(colors[i]), outline=(0, 0, 0))
        draw.text((x + SWATCH + 4, y + 2), classes[i], fill=(0, 0, 0), font=font)
    return canvas


def overlay(image: Tensor, color_mask: Tensor, alpha: float = 0.5) -> Tensor:
    """(3, H, W) uint8 image blended with the colour mask (``alpha`` = mask weight)."""
    rgb = image[:3] if image.shape[0] >= 3 else image[:1].expand(3, -1, -1)
    return (rgb.float() * (1 - alpha) + color_mask.float() * alpha).round().to(torch.uint8)


def video_frame(image: Tensor, pred: Tensor, classes: list[str], colors: list, alpha: float = 0.5) -> Tensor:
    """uint8 (3, H + legend, W): the frame blended with its colour mask, above a legend of every
    class (not only those present: every frame of a video keeps one size)."""
    drawn = with_legend(overlay(image, colorize(pred, colors), alpha), torch.arange(len(classes)), classes, colors)
    return torch.from_numpy(np.array(drawn)).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)


def save_prediction(image: Tensor, pred: Tensor, classes: list[str], colors: list, out: Path, stem: str,
                    alpha: float = 0.5) -> dict:
    """Write ``<stem>_mask.png`` (colour mask + legend) and ``<stem>_overlay.png``; their paths.
    Images narrower than MIN_WIDTH are enlarged by a whole factor, so small scenes stay legible."""
    make_folder(out)
    k = -(-MIN_WIDTH // pred.shape[-1])
    if k > 1:
        pred = pred.repeat_interleave(k, 0).repeat_interleave(k, 1)
        image = image.repeat_interleave(k, 1).repeat_interleave(k, 2)
    color_mask = colorize(pred, colors)
    mask_path, overlay_path = out / f"{stem}_mask.png", out / f"{stem}_overlay.png"
    save_pil(with_legend(color_mask, pred, classes, colors), mask_path)
    save_pil(to_pil(overlay(image, color_mask, alpha)), overlay_path)
    return {"mask": str(mask_path), "overlay": str(overlay_path)}


# ---------------------------------------------------------------------- run / eval plots
def write_all(task, run_dir, history, model, data, metrics: dict) -> list[str]:
    """curves.png (when there is a history), per_class_iou.png, predictions.png, worst_iou.png
    (the images with the lowest IoU), worst_iou.csv (every analysed image's IoU, lowest first) and
    likely_mask_errors.csv (confident regions that disagree with the mask)."""
    from cnnlab.tasks.error_analysis import write_rows

    run_dir = make_folder(run_dir)
    paths = []
    if history:
        paths.append(plot_curves(history, run_dir / "curves.png"))
    paths.append(plot_class_iou(metrics["per_class_iou"], task.colors, metrics["miou"],
                                run_dir / "per_class_iou.png"))
    paths.append(plot_samples(task, model, data, run_dir / "predictions.png"))
    ious = per_image_iou(task, model, data)
    order = [i for i in torch.argsort(ious, stable=True).tolist() if not torch.isnan(ious[i])]
    paths.append(write_rows(run_dir / "worst_iou.csv", ["image", "iou"],
                            [(_name(data, i), round(float(ious[i]), 6)) for i in order]))
    if order:
        paths.append(plot_samples(task, model, data, run_dir / "worst_iou.png", index=torch.tensor(order[:SAMPLES]),
                                  ious=ious, title="the images with the lowest IoU"))
    paths.append(write_rows(run_dir / "likely_mask_errors.csv", ["image", "mask_class", "predicted_class", "pixels",
                                                                 "share"], _disagreements(task, model, data)))
    return [str(p) for p in paths]


@torch.no_grad()
def _disagreements(task, model, data, limit: int = ANALYSED, batch: int = 16) -> list[tuple]:
    """likely_mask_errors.csv: per image, the regions where the model is confidently sure of
    another class than the mask's, over MASK_SHARE of the image's labelled pixels; largest first."""
    from cnnlab.tasks.error_analysis import MASK_SHARE, confident_disagreement

    model.eval()
    device = next(model.parameters()).device
    rows = []
    for i in range(0, min(limit, len(data)), batch):
        masks = data.labels[i:i + batch]
        probs = task.logits(model, data.images[i:i + batch].to(device)).float().softmax(1).cpu()
        for b, found in enumerate(confident_disagreement(probs, masks, IGNORE)):
            labelled = int((masks[b] != IGNORE).sum())
            rows += [(_name(data, i + b), task.classes[m], task.classes[p], n, round(n / labelled, 4))
                     for m, p, n in found if labelled and n / labelled >= MASK_SHARE]
    return sorted(rows, key=lambda r: -r[4])


@torch.no_grad()
def per_image_iou(task, model, data, limit: int = ANALYSED, batch: int = 32) -> Tensor:
    """(n,) each image's mean IoU (error_analysis.image_iou) for the first ``limit`` images."""
    from cnnlab.tasks.error_analysis import image_iou

    model.eval()
    device = next(model.parameters()).device
    n = min(limit, len(data))
    out = [image_iou(task.logits(model, data.images[i:i + batch].to(device)).argmax(1).cpu(),
                     data.labels[i:i + batch], len(task.classes), IGNORE) for i in range(0, n, batch)]
    return torch.cat(out) if out else torch.zeros(0)


def _name(data, i: int) -> str:
    files = getattr(data, "files", None) or []
    return Path(files[i]).name if i < len(files) else f"image {i}"


def plot_curves(history: list[dict], path: Path) -> Path:
    """Loss per epoch (train, val) and val mean IoU / train pixel accuracy."""
    return curves.plot_curves(history, path, [
        ("loss", "cross-entropy per pixel", [("train_loss", "train"), ("val_loss", "val")]),
        ("accuracy and IoU", "", [("train_acc", "train pixel accuracy"), ("val_miou", "val mean IoU")])],
        ylim=(0, 1))


def plot_class_iou(per_class: dict, colors: list, miou: float, path: Path) -> Path:
    """A horizontal bar per class (its colour), the mean IoU as a dashed line."""
    names = list(per_class)
    values = [v if v is not None else 0.0 for v in per_class.values()]
    fig, ax = plt.subplots(figsize=(6, 0.9 + 0.32 * len(names)))
    ax.barh(range(len(names))[::-1], values, color=[tuple(v / 255 for v in c) for c in colors],
            edgecolor="black", linewidth=0.5)
    for y, v, raw in zip(range(len(names))[::-1], values, per_class.values()):
        ax.text(min(v, 0.9) + 0.01, y, "n/a" if raw is None else f"{v:.3f}", va="center", fontsize=8)
    ax.axvline(miou, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(names))[::-1], names, fontsize=8)
    ax.set(xlim=(0, 1), xlabel="IoU", title=f"per-class IoU (mean {miou:.3f})")
    return _save(fig, path)


@torch.no_grad()
def plot_samples(task, model, data, path: Path, n: int = SAMPLES, index: Tensor | None = None,
                 ious: Tensor | None = None, title: str = "") -> Path:
    """Rows of image | ground truth | prediction for ``index`` (default: ``n`` evenly spaced
    samples of ``data``), every panel titled (with the image's IoU when ``ious`` is given), a
    legend of the class colours below."""
    if index is None:
        index = torch.linspace(0, len(data) - 1, min(n, len(data))).long()
    images, masks = data.images[index], data.labels[index]
    model.eval()
    device = next(model.parameters()).device
    preds = task.logits(model, images.to(device)).argmax(1).cpu()
    rows = len(index)
    fig, axes = plt.subplots(rows, 3, figsize=(9, 2.8 * rows * images.shape[-2] / images.shape[-1] + 0.8),
                             squeeze=False)
    for r, i in enumerate(index.tolist()):
        iou = f", IoU {float(ious[i]):.3f}" if ious is not None else ""
        panels = [images[r], colorize(masks[r], task.colors), colorize(preds[r], task.colors)]
        for c, (img, name) in enumerate(zip(panels, (f"{_name(data, i)}{iou}", "ground truth", "prediction"))):
            axes[r, c].imshow(img.permute(1, 2, 0).numpy(), interpolation="nearest")
            axes[r, c].axis("off")
            axes[r, c].set_title(name, fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=tuple(v / 255 for v in c), edgecolor="black", linewidth=0.5)
               for c in task.colors]
    fig.legend(handles, task.classes, loc="lower center", ncol=min(6, len(task.classes)), fontsize=7,
               frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path = save_figure(fig, path, dpi=90, bbox_inches="tight")
    return path
