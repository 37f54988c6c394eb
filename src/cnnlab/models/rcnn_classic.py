"""The classic R-CNN pipeline (Girshick et al. 2014), as the lecture tells it, for teaching.

1. Class-agnostic region proposals: sliding windows of several sizes and aspect ratios,
   ranked by an objectness cue (the colour contrast between a window and the ring around it,
   after Alexe et al. 2012's "colour contrast" measure); the top ``proposals`` are kept.
2. Each region is cut out of the *image* and warped to a fixed ``warp`` x ``warp`` size
   (RoIAlign on pixels), then classified by a CNN (the lecture's conv blocks) into background
   + classes; a linear layer also regresses a box correction (R-CNN's bounding-box regression).
3. Per-class non-maximum suppression (``torchvision.ops.batched_nms``).

Unlike Faster R-CNN, the CNN runs once per region, not once per image: slower, and the
proposals are not learned. Same interface as torchvision's detectors:

    model = get_model("rcnn", num_classes=7)
    losses = model(images, targets)   # train: {"loss_classifier", "loss_box_reg"}
    model.eval(); model(images)       # [{"boxes", "labels", "scores"}] per image
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import batched_nms, box_iou, clip_boxes_to_image, roi_align

from cnnlab.models.lecture_cnn import LectureCNN
from cnnlab.models.registry import register_model


def sliding_windows(height: int, width: int, sizes: tuple[int, ...], aspect_ratios: tuple[float, ...],
                    step: float) -> Tensor:
    """Windows (M, 4) as (x0, y0, x1, y1): for each size s and ratio r (height / width), an
    s*sqrt(r) x s/sqrt(r) box every ``step * s`` pixels, clipped to the image."""
    out = []
    for s in sizes:
        stride = max(1.0, step * s)
        for r in aspect_ratios:
            bh, bw = s * math.sqrt(r), s / math.sqrt(r)
            ys = torch.arange(bh / 2, height - bh / 2 + 1e-3, stride) if bh < height else torch.tensor([height / 2])
            xs = torch.arange(bw / 2, width - bw / 2 + 1e-3, stride) if bw < width else torch.tensor([width / 2])
            cy, cx = torch.meshgrid(ys, xs, indexing="ij")
            c = torch.stack([cx, cy, cx, cy], -1).reshape(-1, 4)
            out.append(c + torch.tensor([-bw / 2, -bh / 2, bw / 2, bh / 2]))
    return clip_boxes_to_image(torch.cat(out), (height, width))


def colour_contrast(image: Tensor, boxes: Tensor) -> Tensor:
    """Objectness (M,): distance between a window's mean colour and that of the ring around it
    (the window grown by half its size), from integral images. image: (C, H, W) float."""
    h, w = image.shape[1:]
    integral = F.pad(image.cumsum(1).cumsum(2), (1, 0, 1, 0))  # (C, H+1, W+1)

    def mean(b: Tensor) -> tuple[Tensor, Tensor]:
        x0, y0, x1, y1 = b.round().long().unbind(1)
        x0, x1 = x0.clamp(0, w), x1.clamp(0, w)
        y0, y1 = y0.clamp(0, h), y1.clamp(0, h)
        s = integral[:, y1, x1] - integral[:, y0, x1] - integral[:, y1, x0] + integral[:, y0, x0]  # (C, M)
        area = ((x1 - x0) * (y1 - y0)).clamp(min=1)
        return s, area

    inner, a_in = mean(boxes)
    half = (boxes[:, 2:] - boxes[:, :2]) / 4
    outer, a_out = mean(torch.cat([boxes[:, :2] - half, boxes[:, 2:] + half], 1))
    ring = (outer - inner) / (a_out - a_in).clamp(min=1)
    return (inner / a_in - ring).norm(dim=0)  # (M,)


class ClassicRCNN(nn.Module):
    """Proposals -> warp each region -> CNN class scores and box correction -> per-class NMS."""

    def __init__(self, num_classes: int, in_channels: int = 3, *,
                 warp: int = 32,                           # side of the warped region, pixels
                 window_sizes: tuple[int, ...] = (12, 18, 26, 36, 48),  # proposal sides, pixels
                 aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0),  # proposal height / width
                 step: float = 0.25,                        # window stride, fraction of its size
                 proposals: int = 300,                      # kept per image, by colour contrast
                 widths: tuple[int, ...] = (32, 64, 128),   # the CNN's conv blocks
                 hidden: int = 256,                         # FC layer before the two outputs
                 samples_per_image: int = 64,               # training regions per image
                 positive_fraction: float = 0.25,           # of them, at most this many objects
                 fg_iou: float = 0.5,                       # IoU with a box that makes a region that object
                 score_thresh: float = 0.05, nms_thresh: float = 0.5, detections_per_img: int = 100,
                 image_mean: tuple[float, ...] = (0.5, 0.5, 0.5), image_std: tuple[float, ...] = (0.25, 0.25, 0.25)):
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.warp, self.window_sizes, self.aspect_ratios, self.step = warp, window_sizes, aspect_ratios, step
        self.n_proposals, self.samples_per_image, self.positive_fraction = proposals, samples_per_image, positive_fraction
        self.fg_iou = fg_iou
        self.score_thresh, self.nms_thresh, self.detections_per_img = score_thresh, nms_thresh, detections_per_img
        self.register_buffer("mean", torch.tensor(image_mean[:in_channels]).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(image_std[:in_channels]).view(-1, 1, 1), persistent=False)
        self.features = LectureCNN(num_classes, in_channels, widths=tuple(widths)).features
        side = math.ceil(warp / 2 ** len(widths))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * side * side, hidden), nn.ReLU(inplace=True))
        self.cls_score = nn.Linear(hidden, num_classes)  # background + classes
        self.bbox_pred = nn.Linear(hidden, 4)  # class-agnostic correction of the region
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
        self._windows: dict[tuple[int, int], Tensor] = {}

    # ------------------------------------------------------------------ stages
    def propose(self, images: list[Tensor], top: int | None = None) -> list[Tensor]:
        """Step 1: the ``top`` windows per image by colour contrast, (top, 4) in pixels."""
        out = []
        for img in images:
            h, w = img.shape[-2:]
            if (h, w) not in self._windows:
                self._windows[h, w] = sliding_windows(h, w, self.window_sizes, self.aspect_ratios, self.step)
            windows = self._windows[h, w].to(img.device)
            score = colour_contrast(img.float(), windows)
            keep = score.topk(min(top or self.n_proposals, len(windows))).indices
            out.append(windows[keep])
        return out

    def classify(self, images: list[Tensor], regions: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Steps 2: warp every region to warp x warp and run the CNN: logits (M, K), deltas (M, 4)."""
        x = torch.stack([(img - self.mean) / self.std for img in images])  # (B, C, H, W)
        crops = roi_align(x, [r.float() for r in regions], output_size=self.warp, aligned=True)  # (M, C, warp, warp)
        h = self.fc(self.features(crops))
        return self.cls_score(h), self.bbox_pred(h)

    # ------------------------------------------------------------------ forward
    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None):
        regions = self.propose(images)
        if self.training:
            return self._losses(images, regions, targets)
        logits, deltas = self.classify(images, regions)
        return self._detections(logits, deltas, regions, [img.shape[-2:] for img in images])

    def _losses(self, images, regions, targets) -> dict[str, Tensor]:
        sampled, labels, goals = [], [], []
        for r, t in zip(regions, targets):
            r = torch.cat([r, t["boxes"]])  # the true boxes are positives too (as in R-CNN)
            if len(t["boxes"]):
                iou, match = box_iou(r, t["boxes"]).max(1)
                label = torch.where(iou >= self.fg_iou, t["labels"][match], 0)
                goal = t["boxes"][match]
            else:
                label, goal = torch.zeros(len(r), dtype=torch.int64, device=r.device), r
            pos, neg = (label > 0).nonzero().squeeze(1), (label == 0).nonzero().squeeze(1)
            n_pos = min(len(pos), int(self.samples_per_image * self.positive_fraction))
            n_neg = min(len(neg), self.samples_per_image - n_pos)
            pick = torch.cat([pos[torch.randperm(len(pos), device=r.device)[:n_pos]],
                              neg[torch.randperm(len(neg), device=r.device)[:n_neg]]])
            sampled.append(r[pick])
            labels.append(label[pick])
            goals.append(goal[pick])
        logits, deltas = self.classify(images, sampled)
        labels, regions_all = torch.cat(labels), torch.cat(sampled)
        targets_delta = self.box_coder.encode_single(torch.cat(goals), regions_all)
        fg = labels > 0
        box_loss = F.smooth_l1_loss(deltas[fg].float(), targets_delta[fg], beta=1 / 9, reduction="sum")
        return {"loss_classifier": F.cross_entropy(logits.float(), labels),
                "loss_box_reg": box_loss / max(1, len(labels))}

    def _detections(self, logits, deltas, regions, sizes) -> list[dict[str, Tensor]]:
        probs = logits.float().softmax(1)
        boxes = self.box_coder.decode_single(deltas.float(), torch.cat(regions))
        out, start = [], 0
        for r, size in zip(regions, sizes):
            p, b = probs[start:start + len(r), 1:], clip_boxes_to_image(boxes[start:start + len(r)], size)
            start += len(r)
            score, label = p.flatten(), torch.arange(1, self.num_classes, device=p.device).repeat(len(r))
            b = b.repeat_interleave(self.num_classes - 1, 0)  # (M * (K - 1), 4): one box per class score
            keep = (score > self.score_thresh) & ((b[:, 2] - b[:, 0]) > 1) & ((b[:, 3] - b[:, 1]) > 1)
            b, score, label = b[keep], score[keep], label[keep]
            keep = batched_nms(b, score, label, self.nms_thresh)[:self.detections_per_img]  # step 3
            out.append({"boxes": b[keep], "labels": label[keep], "scores": score[keep]})
        return out

    def set_thresholds(self, score: float, nms_iou: float) -> None:
        """Keep detections scoring at least ``score``; suppress overlaps above ``nms_iou`` per class."""
        self.score_thresh, self.nms_thresh = score, nms_iou

    def thresholds(self) -> tuple[float, float]:
        """(score, nms_iou) now in force."""
        return self.score_thresh, self.nms_thresh


@register_model("rcnn", input_size=(3, 64, 64), task="detect", paper="Girshick et al. 2014 (R-CNN)",
                tags=("detection", "rcnn", "lecture"))
def rcnn(num_classes: int = 7, in_channels: int = 3, pretrained: bool = False, **kwargs) -> ClassicRCNN:
    """The classic R-CNN (see :class:`ClassicRCNN` for proposals, warp size and sampling)."""
    from cnnlab.models.common import check_pretrained

    check_pretrained("rcnn", pretrained)
    kwargs.pop("min_size", None)  # R-CNN works at the image's own size
    kwargs.pop("max_size", None)
    return ClassicRCNN(num_classes, in_channels, **kwargs)
