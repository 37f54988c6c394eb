"""Detection figures: boxes with labels and scores, region proposals beside them, curves, and
the error analysis (false positives and missed boxes per class, the images with the most errors)."""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import draw_bounding_boxes, make_grid

from cnnlab.images import save_image
from cnnlab.tasks import curves

MIN_SIDE = 256  # pixels: small images are enlarged (nearest) so that labels stay legible
ANALYSED = 256     # images of a split that error analysis predicts
ERROR_IMAGES = 6   # images in errors.png
MISSED, FALSE_POSITIVE, CORRECT = "#f58231", "#e6194b", "#3cb44b"  # errors.png's box colours
PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
           "#fabed4", "#469990", "#dcbeff", "#9a6324"]


def draw_boxes(image: Tensor, boxes: Tensor, labels: list[str], colors: list[str]) -> Tensor:
    """uint8 (C, H, W) -> RGB uint8 (3, kH, kW) with ``boxes`` (x0, y0, x1, y1) drawn and labelled."""
    img = image[:3] if image.shape[0] >= 3 else image[:1].expand(3, -1, -1)
    k = max(1, math.ceil(MIN_SIDE / max(img.shape[1:])))
    img = img.repeat_interleave(k, 1).repeat_interleave(k, 2)  # nearest: keep pixels square
    if not len(boxes):
        return img.contiguous()
    return draw_bounding_boxes(img.contiguous(), boxes.reshape(-1, 4) * k, labels=labels, colors=colors, width=2)


def draw_prediction(image: Tensor, result: dict, out: Path, classes: list[str]) -> Path:
    """``<out>/<stem>_detections.png``: final boxes, and the proposals beside them if present."""
    dets = result["detections"]
    boxes = torch.tensor([d["box"] for d in dets], dtype=torch.float32)
    panels = [draw_boxes(image, boxes, [f"{d['class']} {d['score']:.2f}" for d in dets],
                         [PALETTE[classes.index(d["class"]) % len(PALETTE)] for d in dets])]
    if "proposals" in result:
        props = torch.tensor(result["proposals"], dtype=torch.float32)
        panels.insert(0, draw_boxes(image, props, [str(i + 1) for i in range(len(props))], ["#ffe119"] * len(props)))
    stem = Path(result["image"]).stem if result["image"] != "tensor" else "image"
    return save_image(make_grid(torch.stack(panels), nrow=len(panels), padding=4, pad_value=255),
                      Path(out) / f"{stem}_detections.png")


def write_all(task, run_dir, history: list[dict], model, data, metrics: dict) -> list[str]:
    """curves.png (loss, mAP per epoch, after training), detections.png (8 images, truth | predicted),
    detection_errors.csv (per class: correct, false positives, missed at IoU 0.5),
    likely_missing_labels.csv (confident detections no labelled box comes near) and errors.png
    (the images with the most errors, false positives and missed boxes drawn)."""
    from cnnlab.tasks.error_analysis import detection_errors, worst_images, write_rows

    run_dir = Path(run_dir)
    paths = [plot_curves(history, run_dir / "curves.png")] if history else []
    preds = _predictions(task, model, data.images[:ANALYSED])
    paths.append(truth_and_prediction(data.images[:8], data.targets[:8], preds[:8], task.classes,
                                      run_dir / "detections.png", names=data.files[:8]))
    errors = detection_errors(preds, data.targets[:len(preds)], task.classes)
    paths.append(write_rows(run_dir / "detection_errors.csv", ["class", "correct", "false_positives", "missed"],
                            [(c, r["tp"], r["fp"], r["missed"]) for c, r in errors["per_class"].items()]))
    paths.append(write_rows(run_dir / "likely_missing_labels.csv", ["image", "class", "score", "x0", "y0", "x1", "y1"],
                            _missing_rows(data, preds, task.classes)))
    worst = worst_images(errors["per_image"], ERROR_IMAGES)
    if worst:
        paths.append(plot_errors(data.images[worst], [data.targets[i] for i in worst], [preds[i] for i in worst],
                                 [errors["per_image"][i] for i in worst], task.classes, run_dir / "errors.png",
                                 names=[data.files[i] for i in worst] if data.files else ()))
    return [str(p) for p in paths]


def _missing_rows(data, preds: list[dict], classes: list[str]) -> list[tuple]:
    """likely_missing_labels.csv: each confident detection far from every labelled box, its box in
    the pixels of the image on disk."""
    from cnnlab.tasks.error_analysis import likely_missing_labels

    rows = []
    h, w = data.images.shape[-2:]
    for i, found in enumerate(likely_missing_labels(preds, data.targets[:len(preds)])):
        sh, sw = data.source_sizes[i] if data.source_sizes else (h, w)
        scale = torch.tensor([sw / w, sh / h, sw / w, sh / h])
        name = data.files[i] if data.files else f"image {i}"
        for j in found:
            box = (preds[i]["boxes"][j].float() * scale).tolist()
            rows.append((name, classes[int(preds[i]["labels"][j]) - 1], round(float(preds[i]["scores"][j]), 4),
                         *(round(v, 1) for v in box)))
    return rows


@torch.no_grad()
def _predictions(task, model, images: Tensor, batch: int = 16) -> list[dict]:
    """The model's detections for uint8 ``images`` (N, C, H, W), on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    preds = []
    for i in range(0, len(images), batch):
        preds += [{k: v.cpu() for k, v in p.items()} for p in model(task.prepare(images[i:i + batch].to(device)))]
    return preds


def plot_errors(images: Tensor, targets: list[dict], preds: list[dict], matches: list[dict], classes: list[str],
                path, names: list[str] = (), columns: int = 2):
    """Image pairs, ground truth | errors: missed true boxes dashed orange, false positives solid red,
    correct detections thin green; each errors panel titled with its counts, one legend for all."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    from cnnlab.figures import save_figure
    from cnnlab.tasks.error_analysis import MATCH_IOU, MIN_SCORE

    rows = math.ceil(len(images) / columns)
    h, w = images.shape[-2:]
    fig, axes = plt.subplots(rows, 2 * columns, figsize=(4.5 * columns * 2 * w / max(h, w),
                                                         4.5 * rows * h / max(h, w) + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    styles = {"missed": dict(edgecolor=MISSED, linestyle="--", linewidth=2),
              "fp": dict(edgecolor=FALSE_POSITIVE, linestyle="-", linewidth=2),
              "tp": dict(edgecolor=CORRECT, linestyle="-", linewidth=1)}
    for i, (img, t, p, m) in enumerate(zip(images, targets, preds, matches)):
        name = Path(names[i]).name if i < len(names) else f"image {i + 1}"
        truth = t["labels"].tolist()
        left, right = axes[i // columns, 2 * (i % columns)], axes[i // columns, 2 * (i % columns) + 1]
        left.imshow(draw_boxes(img, t["boxes"], [classes[c - 1] for c in truth],
                               [PALETTE[(c - 1) % len(PALETTE)] for c in truth]).permute(1, 2, 0).numpy())
        left.set_title(f"{name}: ground truth\n{_tally(truth, classes)}", fontsize=9)
        rgb = img[:3] if img.shape[0] >= 3 else img[:1].expand(3, -1, -1)
        right.imshow(rgb.permute(1, 2, 0).numpy(), interpolation="nearest")
        boxes, labels, scores = (p[k][m["keep"]] for k in ("boxes", "labels", "scores"))
        drawn = [("missed", b, f"missed {classes[c - 1]}") for b, c in zip(t["boxes"][~m["found"]],
                                                                         t["labels"][~m["found"]].tolist())]
        drawn += [("fp" if not ok else "tp", b, f"{classes[c - 1]} {s:.2f}")
                  for b, c, s, ok in zip(boxes, labels.tolist(), scores.tolist(), m["matched"].tolist())]
        for kind, (x0, y0, x1, y1), label in drawn:
            right.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, **styles[kind]))
            if kind != "tp":
                right.text(x0 - 0.5, y0 - 1, label, fontsize=7, color="white", va="bottom",
                           bbox=dict(facecolor=styles[kind]["edgecolor"], edgecolor="none", pad=1, alpha=0.85))
        right.set_title(f"errors: {m['missed']} missed, {m['fp']} false positive{'s' * (m['fp'] != 1)}", fontsize=9)
    handles = [Line2D([], [], color=MISSED, linestyle="--", linewidth=2, label="missed (true box not found)"),
               Line2D([], [], color=FALSE_POSITIVE, linewidth=2, label="false positive"),
               Line2D([], [], color=CORRECT, linewidth=1, label="correct")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"images with the most errors (matched at IoU {MATCH_IOU:g}, scores >= {MIN_SCORE:g})", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return save_figure(fig, path, dpi=100, bbox_inches="tight")


def truth_and_prediction(images: Tensor, targets: list[dict], preds: list[dict], classes: list[str], path,
                         names: list[str] = (), min_score: float = 0.5, columns: int = 2):
    """A figure of image pairs, ground truth | predictions scoring at least ``min_score``, each
    panel titled with the image's name and its boxes per class."""
    import matplotlib.pyplot as plt

    from cnnlab.figures import save_figure

    rows = math.ceil(len(images) / columns)
    fig, axes = plt.subplots(rows, 2 * columns, figsize=(5 * columns * 2 * images.shape[-1] / max(images.shape[-2:]),
                                                         5 * rows * images.shape[-2] / max(images.shape[-2:])),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (img, t, p) in enumerate(zip(images, targets, preds)):
        keep = p["scores"] >= min_score
        truth, found = t["labels"].tolist(), p["labels"][keep].tolist()
        name = Path(names[i]).name if i < len(names) else f"image {i + 1}"
        panels = [(draw_boxes(img, t["boxes"], [classes[c - 1] for c in truth], [PALETTE[(c - 1) % len(PALETTE)] for c in truth]),
                   f"{name}: truth\n{_tally(truth, classes)}"),
                  (draw_boxes(img, p["boxes"][keep].float().cpu(),
                              [f"{classes[c - 1]} {s:.2f}" for c, s in zip(found, p["scores"][keep].tolist())],
                              [PALETTE[(c - 1) % len(PALETTE)] for c in found]),
                   f"predicted (score >= {min_score:g})\n{_tally(found, classes)}")]
        for j, (tile, title) in enumerate(panels):
            ax = axes[i // columns, 2 * (i % columns) + j]
            ax.imshow(tile.permute(1, 2, 0).numpy())
            ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100, bbox_inches="tight")


def _tally(labels: list[int], classes: list[str]) -> str:
    """'RBC 12, WBC 1' (classes in order; 'no boxes' when empty)."""
    counts = [(c, labels.count(i + 1)) for i, c in enumerate(classes) if labels.count(i + 1)]
    return ", ".join(f"{c} {n}" for c, n in counts) or "no boxes"


def plot_curves(history: list[dict], path: Path) -> Path:
    """Training loss and validation mAP per epoch."""
    return curves.plot_curves(history, path, [
        ("training loss", "sum of R-CNN losses", [("train_loss", "train")]),
        ("validation mAP", "mAP", [("val_map50", "val mAP@.5"), ("val_map", "val mAP@[.5:.95]")])],
        ylim=(0, 1))
