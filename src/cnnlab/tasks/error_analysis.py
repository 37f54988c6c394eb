"""Error analysis, fastai's ``Interpretation`` for every task: the numbers behind the figures.

    most_confused(confusion, classes)             # [(true, predicted, count)], most frequent first
    top_losses(logits, labels, k)                 # the k items the model is most wrong about
    mistakes_first(logits, labels)                # wrong items first, then the right ones
    match_boxes(pred, truth, iou=0.5)             # greedy by score: true positives, false positives, missed
    detection_errors(preds, targets, classes)     # per class TP / FP / missed, per image error counts
    image_iou(pred, mask, k)                      # each image's mean IoU over the classes it shows

Plots live in the tasks' ``*_plots`` modules; everything here is a small tensor function.
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from cnnlab.files import replacing

MATCH_IOU = 0.5    # a prediction matches a true box of its class at IoU >= this (PASCAL VOC's rule)
MIN_SCORE = 0.5    # detections scoring below this are not counted as predictions


# ---------------------------------------------------------------------- classification
def most_confused(confusion: Tensor | list, classes: list[str], min_count: int = 1,
                  top: int | None = None) -> list[tuple[str, str, int]]:
    """Off-diagonal cells of a confusion matrix (rows: true, columns: predicted) with at least
    ``min_count`` images, most frequent first (ties: in class order): ``(true, predicted, count)``."""
    c = torch.as_tensor(confusion).clone()
    c.fill_diagonal_(0)
    rows, cols = torch.nonzero(c >= max(1, min_count), as_tuple=True)
    pairs = sorted(zip(rows.tolist(), cols.tolist()), key=lambda rc: (-int(c[rc]), rc))
    return [(classes[r], classes[p], int(c[r, p])) for r, p in pairs[:top]]


def top_losses(logits: Tensor, labels: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(losses, indices) of the ``k`` items with the largest cross-entropy, largest first."""
    losses = F.cross_entropy(logits.float(), labels, reduction="none")
    return losses.topk(min(k, len(losses)))


def mistakes_first(logits: Tensor, labels: Tensor, seed: int = 0) -> Tensor:
    """Indices of all items, the misclassified ones first, each group in a random order fixed by
    ``seed`` (a fair sample of the mistakes; ``top_losses`` shows the worst ones)."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    right = (logits.argmax(1) == labels)[order]
    return order[torch.argsort(right.to(torch.uint8), stable=True)]


def write_rows(path: str | Path, header: list[str], rows: list) -> Path:
    """A CSV file of ``rows`` under ``header``."""
    path = Path(path)
    with replacing(path, "w") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def format_confused(pairs: list[tuple[str, str, int]], total: int | None = None) -> str:
    """The most confused pairs as terminal lines (empty string when there are none)."""
    if not pairs:
        return ""
    lines = [f"most confused{f' ({total} mistakes in all)' if total is not None else ''}:",
             f"{'true':>16} {'predicted':>16} {'images':>6}"]
    lines += [f"{t[:16]:>16} {p[:16]:>16} {n:6d}" for t, p, n in pairs]
    return "\n".join(lines)


# ---------------------------------------------------------------------- detection
def match_boxes(pred_boxes: Tensor, pred_labels: Tensor, pred_scores: Tensor, true_boxes: Tensor,
                true_labels: Tensor, iou: float = MATCH_IOU) -> tuple[Tensor, Tensor]:
    """Greedy matching by score, as PASCAL VOC counts detections: each prediction, highest score
    first, takes the unmatched true box of its class it overlaps most, if that IoU is >= ``iou``.

    Returns (matched: bool (P,) true positives among the predictions, found: bool (T,) true boxes
    matched). False positives are ``~matched``, missed boxes ``~found``.
    """
    from torchvision.ops import box_iou

    matched = torch.zeros(len(pred_boxes), dtype=torch.bool)
    found = torch.zeros(len(true_boxes), dtype=torch.bool)
    if not len(pred_boxes) or not len(true_boxes):
        return matched, found
    overlap = box_iou(pred_boxes.float().reshape(-1, 4), true_boxes.float().reshape(-1, 4))  # (P, T)
    overlap[pred_labels.reshape(-1, 1) != true_labels.reshape(1, -1)] = -1  # other classes never match
    for i in torch.argsort(pred_scores, descending=True, stable=True).tolist():
        row = overlap[i].masked_fill(found, -1)
        j = int(row.argmax())
        if row[j] >= iou:
            matched[i], found[j] = True, True
    return matched, found


def detection_errors(preds: list[dict], targets: list[dict], classes: list[str], iou: float = MATCH_IOU,
                     min_score: float = MIN_SCORE) -> dict:
    """True positives, false positives and missed boxes per class (labels 1..K), and per image.

    Predictions scoring below ``min_score`` are left out. Returns ``{"per_class": {class: {"tp",
    "fp", "missed"}}, "per_image": [{"tp", "fp", "missed", "matched", "found", "keep"}],
    "iou", "min_score"}``; ``keep`` selects the counted predictions, ``matched`` marks which of
    those were right and ``found`` which true boxes were.
    """
    counts = torch.zeros(len(classes), 3, dtype=torch.int64)  # per class: tp, fp, missed
    per_image = []
    for p, t in zip(preds, targets):
        keep = p["scores"].cpu() >= min_score
        labels, truth = p["labels"].cpu()[keep], t["labels"].cpu()
        matched, found = match_boxes(p["boxes"].cpu()[keep], labels, p["scores"].cpu()[keep],
                                     t["boxes"].cpu(), truth, iou)
        for column, lab in ((0, labels[matched]), (1, labels[~matched]), (2, truth[~found])):
            counts[:, column] += torch.bincount(lab - 1, minlength=len(classes))[:len(classes)]
        per_image.append({"tp": int(matched.sum()), "fp": int((~matched).sum()), "missed": int((~found).sum()),
                          "matched": matched, "found": found, "keep": keep})
    return {"per_class": {c: {"tp": int(a), "fp": int(b), "missed": int(m)}
                          for c, (a, b, m) in zip(classes, counts.tolist())},
            "per_image": per_image, "iou": iou, "min_score": min_score}


def worst_images(per_image: list[dict], n: int) -> list[int]:
    """Indices of the ``n`` images with the most errors (false positives + missed), most first;
    images without errors are left out."""
    errors = [(im["fp"] + im["missed"], -i) for i, im in enumerate(per_image)]
    return [-i for e, i in sorted(errors, reverse=True)[:n] if e > 0]


def format_detection_errors(per_class: dict, iou: float = MATCH_IOU, min_score: float = MIN_SCORE) -> str:
    """The per-class table of true positives, false positives and missed boxes."""
    lines = [f"errors at IoU {iou:g}, score >= {min_score:g}:",
             f"{'class':>16} {'correct':>7} {'false+':>7} {'missed':>7}"]
    lines += [f"{c[:16]:>16} {r['tp']:7d} {r['fp']:7d} {r['missed']:7d}" for c, r in per_class.items()]
    return "\n".join(lines)


MISSING_SCORE = 0.8   # a detection at least this confident with no labelled box near it: a likely missing label
NEAR_IOU = 0.1        # "near": a labelled box (of any class) overlapping the detection by at least this IoU


def likely_missing_labels(preds: list[dict], targets: list[dict], min_score: float = MISSING_SCORE,
                          near: float = NEAR_IOU) -> list[list[int]]:
    """Per image, the indices of the confident detections that no labelled box of any class comes
    near: an object the labeller missed (BCCD leaves cells at the border unlabelled) more often than
    a false alarm, so worth a look before trusting the false-positive count."""
    from torchvision.ops import box_iou

    found = []
    for p, t in zip(preds, targets):
        confident = torch.nonzero(p["scores"].cpu() >= min_score).flatten()
        boxes = p["boxes"].cpu().float().reshape(-1, 4)[confident]
        truth = t["boxes"].cpu().float().reshape(-1, 4)
        alone = box_iou(boxes, truth).amax(1) < near if len(truth) else torch.ones(len(boxes), dtype=torch.bool)
        found.append(confident[alone].tolist())
    return found


# ---------------------------------------------------------------------- segmentation
MASK_CONFIDENCE = 0.9  # the model's probability for a class the mask disagrees with
MASK_SHARE = 0.02      # of an image's labelled pixels: a confident disagreement this large is listed


def confident_disagreement(probs: Tensor, mask: Tensor, ignore_index: int = 255,
                           confidence: float = MASK_CONFIDENCE) -> list[list[tuple[int, int, int]]]:
    """Per image of ``probs`` (B, K, H, W) and ``mask`` (B, H, W): ``(mask class, predicted class,
    pixels)`` where the model is at least ``confidence`` sure of another class than the mask's, the
    largest first: a region the mask may have wrong (or the model badly wrong, worth a look either way)."""
    top, pred = probs.max(1)  # (B, H, W)
    k = probs.shape[1]
    out = []
    for b in range(len(mask)):
        wrong = (top[b] >= confidence) & (pred[b] != mask[b]) & (mask[b] != ignore_index)
        pairs = torch.bincount((mask[b][wrong].long() * k + pred[b][wrong]).flatten(), minlength=k * k)
        cells = torch.nonzero(pairs).flatten().tolist()
        out.append(sorted(((c // k, c % k, int(pairs[c])) for c in cells), key=lambda r: -r[2]))
    return out


def image_iou(pred: Tensor, mask: Tensor, num_classes: int, ignore_index: int = 255) -> Tensor:
    """(B,) mean IoU of each image of ``pred`` against ``mask`` (both (B, H, W) class ids) over the
    classes present in that image's truth or prediction; labelled pixels only. An image with no
    labelled pixels gets NaN."""
    b = len(pred)
    valid = mask != ignore_index
    index = (mask.long().clamp(max=num_classes - 1) * num_classes + pred.long()).masked_fill(~valid, 0)
    confusion = torch.zeros(b, num_classes * num_classes, dtype=torch.float64)
    confusion.scatter_add_(1, index.reshape(b, -1), valid.reshape(b, -1).double())
    confusion = confusion.reshape(b, num_classes, num_classes)  # (B, true, predicted)
    tp = confusion.diagonal(dim1=1, dim2=2)
    union = confusion.sum(2) + confusion.sum(1) - tp  # (B, K)
    present = union > 0
    iou = torch.where(present, tp / union.clamp(min=1), torch.zeros_like(tp))
    return iou.sum(1) / present.sum(1)  # 0/0 = NaN for an image with no labelled pixels
