"""Semantic segmentation: a class for every pixel; per-pixel cross-entropy, IoU from a confusion matrix.

Batches arrive as (images (B, C, H, W) uint8, masks (B, H, W) uint8 with IGNORE = 255).
``--model`` names a segmentation model (fcn8s, fcn16s, fcn32s, deeplabv3plus, unet) or a classifier, which then
becomes the backbone of an FCN-8s; ``--backbone`` picks the FCN backbone explicitly.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.functional.classification import multiclass_confusion_matrix

from cnnlab.data.masks import IGNORE, SegmentationImages
from cnnlab.data.seg_augment import augment_pairs
from cnnlab.runtime.distributed import all_reduce_sum
from cnnlab.errors import CnnlabError
from cnnlab.models import get_model, list_models, model_info
from cnnlab.tasks.base import Task, clean_names
from cnnlab.tasks.options import CLASS_WEIGHTS, SegmentOptions
from cnnlab.tasks.tensors import input_stats, normalise

EVAL_PIXELS = 1 << 21  # pixels per forward pass when evaluating (bounds memory at 480x360)
TTA_ZOOMS = (0.75, 1.25)  # test-time augmentation level 2: the image zoomed out and in, beside it


def _mirrored(model: nn.Module, x: Tensor, mirror: bool) -> Tensor:
    """Scores of ``x``; with ``mirror``, averaged with the mirror image's scores, mirrored back."""
    scores = model(x).float()
    return 0.5 * (scores + model(x.flip(-1)).float().flip(-1)) if mirror else scores


class SegmentTask(Task):
    """Per-pixel classification into ``classes`` (``colors`` draw them).

    mean/std: per-channel normalisation on the 0..1 scale; input_shape: (C, H, W) of the
    training images (predict resizes to it); class_weights: per-class loss weights or None;
    ohem: the hard-pixel threshold of the loss (0: every pixel; ``ohem_cross_entropy``).
    """

    name = "segment"
    Options = SegmentOptions
    score_label = "mean IoU"
    epoch_metrics = ("loss", "miou")
    bf16_end_to_end = True  # amp bf16-full: convolutions, norms and pooling all take bf16
    # why `cnnlab export` refuses this task (None: it exports, parity-checked)
    export_refusal = ("its ONNX graph and onnxruntime runner are not written yet")
    explainable = False  # explain opens up classifiers only
    video = True  # predict_frames: the mask blended over each frame, with a legend

    def __init__(self, classes: list[str], colors: list, mean: list[float], std: list[float],
                 input_shape: tuple[int, int, int], class_weights: list[float] | None = None,
                 flip: bool = False, scale: float = 0.0, translate: int = 0, crop: float = 1.0,
                 ohem: float = 0.0):
        self.classes, self.colors = clean_names(classes), [tuple(c) for c in colors]
        self.mean, self.std = list(mean), list(std)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.class_weights = list(class_weights) if class_weights else None
        self.flip, self.scale, self.translate, self.crop = flip, scale, translate, crop
        self.ohem = ohem

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_data(cls, cfg, train) -> "SegmentTask":
        if not isinstance(train, SegmentationImages):
            raise CnnlabError(f"--data {cfg.data}: holds no pixel masks; --task segment needs a segmentation "
                              f"dataset (shapes, camvid, a CamVid/VOC folder or images/ + masks/)")
        own = cfg.task_config  # SegmentConfig: backbone, class_weights, ohem, scale, crop
        mean, std = input_stats(cfg, _backbone_name(cfg), train)
        weights = class_weights(train.pixel_counts(), own.class_weights)
        return cls(train.classes, train.colors, mean, std, train.image_shape, weights, cfg.flip,
                   own.scale, cfg.translate, own.crop, own.ohem)

    @classmethod
    def from_state(cls, state: dict) -> "SegmentTask":
        return cls(state["classes"], state["colors"], state["mean"], state["std"], tuple(state["input_shape"]),
                   state.get("class_weights"), state.get("flip", False), state.get("scale", 0.0),
                   state.get("translate", 0), state.get("crop", 1.0), state.get("ohem", 0.0))

    def state(self) -> dict:
        return {"name": self.name, "classes": self.classes, "colors": [list(c) for c in self.colors],
                "mean": self.mean, "std": self.std, "input_shape": list(self.input_shape),
                "class_weights": self.class_weights, "flip": self.flip, "scale": self.scale,
                "translate": self.translate, "crop": self.crop, "ohem": self.ohem}

    def build_model(self, cfg) -> nn.Module:
        kwargs = dict(cfg.model_args)
        name = cfg.model
        if model_info(name).task != "segment":  # a classifier: the backbone of an FCN-8s
            kwargs.setdefault("backbone", name)
            name = "fcn8s"
        if cfg.task_config.backbone:
            if "backbone" not in model_info(name).tags:
                raise CnnlabError(f"--backbone: model {name!r} has its own encoder; backbones go with "
                                  f"{', '.join(n for n in list_models(task='segment') if 'backbone' in model_info(n).tags)}")
            kwargs["backbone"] = cfg.task_config.backbone
        model = get_model(name, num_classes=len(self.classes), in_channels=self.input_shape[0],
                          pretrained=cfg.pretrained, **kwargs)
        if cfg.freeze_backbone:
            if not hasattr(model, "backbone"):
                raise CnnlabError(f"--freeze-backbone: model {name!r} has no backbone")
            for p in model.backbone.parameters():
                p.requires_grad_(False)
        return model

    # ------------------------------------------------------------------ tensors
    def prepare(self, images: Tensor) -> Tensor:
        """uint8 (or float 0..255) (B, C, H, W) on the device -> normalised float input, at its own size."""
        return normalise(images, self.input_shape, self.mean, self.std, self.channels_last, resize=False)

    def training_step(self, model, batch, generator, *, cache=None):
        images, masks = batch
        images, masks = augment_pairs(images, masks.long(), generator, self.flip, self.scale, self.translate,
                                      self.crop)
        logits = model(self.prepare(images)).float()  # (B, K, H, W)
        weight = torch.tensor(self.class_weights, device=logits.device) if self.class_weights else None
        loss = (ohem_cross_entropy(logits, masks, weight, self.ohem) if self.ohem
                else F.cross_entropy(logits, masks, weight=weight, ignore_index=IGNORE))
        valid = masks != IGNORE
        correct = ((logits.argmax(1) == masks) & valid).sum()
        return {"loss": loss}, {"correct": correct, "count": valid.sum()}  # device tensors: no host sync

    def tta_views(self, level: int) -> list[str]:
        """The views ``logits(..., tta=level)`` (and so ``evaluate``) averages."""
        mirror, zooms = self._tta(level)
        return ["image"] + (["mirror"] if mirror else []) + [f"zoom {z}x" for z in zooms]

    def _tta(self, level: int) -> tuple[bool, tuple[float, ...]]:
        """(mirror, zooms) at test-time augmentation ``level``: only the views the model trained on,
        the mirror image when it trained with ``flip``, zoomed copies (level 2) with ``scale``."""
        if level not in (0, 1, 2):
            raise CnnlabError(f"--tta: expected 0 (none), 1 (mirror) or 2 (mirror + zooms), got {level!r}")
        return level >= 1 and self.flip, TTA_ZOOMS if level >= 2 and self.scale else ()

    @torch.no_grad()
    def logits(self, model: nn.Module, images: Tensor, tta: int = 0) -> Tensor:
        """Float class scores (B, K, H, W); averaged over test-time views at level ``tta``."""
        x = self.prepare(images)
        mirror, zooms = self._tta(tta)
        scores = _mirrored(model, x, mirror)
        for z in zooms:  # each zoomed copy's scores resized back to the image
            xz = F.interpolate(x, scale_factor=z, mode="bilinear", align_corners=False)
            scores = scores + F.interpolate(_mirrored(model, xz, mirror), size=x.shape[-2:], mode="bilinear",
                                            align_corners=False)
        return scores / (1 + len(zooms))

    # ------------------------------------------------------------------ predict
    def predict(self, lm, images: list, options: SegmentOptions) -> list[dict]:
        """``[{"image", "size", "shares": {class: fraction of pixels}, "mask", "overlay"}]``.

        Each image is resized to the training size, segmented, and the class scores resized
        back to the image's own size. With ``out``, writes ``<stem>_mask.png`` (colours and a
        legend) and ``<stem>_overlay.png`` (the mask blended over the image, ``alpha``) there.
        """
        out, alpha = options.out, options.alpha
        from cnnlab.images import read_image, resize
        from cnnlab.tasks import segment_plots

        c, h, w = self.input_shape
        results = []
        for path in images:
            img = read_image(path, channels=c) if not isinstance(path, Tensor) else path
            logits = lm.logits(resize(img, (h, w))[None])  # (1, K, h, w)
            logits = F.interpolate(logits.float(), size=img.shape[-2:], mode="bilinear", align_corners=False)
            pred = logits[0].argmax(0).cpu()  # (H, W)
            r = {"image": str(path) if not isinstance(path, Tensor) else "<tensor>", **self._shares(pred)}
            if out is not None:
                stem = Path(r["image"]).stem if not isinstance(path, Tensor) else f"image{len(results)}"
                r.update(segment_plots.save_prediction(img, pred, self.classes, self.colors, Path(out), stem,
                                                       alpha))
            results.append(r)
        return results

    def predict_frames(self, lm, frames: list[Tensor], options: SegmentOptions) -> list[tuple[dict, Tensor]]:
        """Per frame ``{"size", "shares"}`` and the frame under its colour mask (``alpha``) above a
        legend of every class (so every frame of a video has one size)."""
        from cnnlab.tasks import segment_plots

        logits = lm.logits(torch.stack([lm.read(f) for f in frames]))  # (B, K, h, w)
        found = []
        for frame, scores in zip(frames, logits):  # one frame's scores at full size at a time: (K, H, W)
            pred = F.interpolate(scores[None].float(), size=frame.shape[-2:], mode="bilinear",
                                 align_corners=False)[0].argmax(0).cpu()  # (H, W)
            found.append((self._shares(pred), segment_plots.video_frame(frame, pred, self.classes, self.colors,
                                                                         options.alpha)))
        return found

    def _shares(self, pred: Tensor) -> dict:
        """``{"size", "shares": {class: fraction of pixels}}`` of a (H, W) class map, largest first."""
        counts = torch.bincount(pred.flatten(), minlength=len(self.classes)).tolist()
        shares = sorted(((n / pred.numel(), name) for name, n in zip(self.classes, counts) if n), reverse=True)
        return {"size": list(pred.shape), "shares": {name: round(s, 6) for s, name in shares}}

    # ------------------------------------------------------------------ metrics
    @torch.no_grad()
    def evaluate(self, model, batches, dist, *, cache=None, tta: int = 0) -> dict:
        """Mean IoU (the score), per-class IoU, pixel accuracy, class-average accuracy, loss."""
        k = len(self.classes)
        device = batches.device
        confusion = torch.zeros(k, k, dtype=torch.int64, device=device)
        sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum over pixels, images
        model.eval()
        for images, masks in batches.epoch(0):
            chunk = max(1, EVAL_PIXELS // images[0, 0].numel())
            for i in range(0, len(images), chunk):
                x, y = images[i:i + chunk], masks[i:i + chunk].long()
                logits = self.logits(model, x, tta)
                confusion += confusion_matrix(logits.argmax(1), y, k)
                loss = F.cross_entropy(logits, y, ignore_index=IGNORE, reduction="sum")
                sums += torch.stack([loss.double(), torch.tensor(float(len(x)), device=device,
                                                                  dtype=torch.float64)])
        all_reduce_sum(confusion, dist)
        all_reduce_sum(sums, dist)
        m = segmentation_metrics(confusion.cpu(), self.classes)
        m["loss"] = float(sums[0]) / max(1, m["pixels"])
        m["count"] = int(sums[1])
        return m

    def score_mask(self, pred: Tensor, truth: Tensor) -> dict:
        """The metrics of one predicted class map against its ground truth (both (H, W); IGNORE left out)."""
        return segmentation_metrics(confusion_matrix(pred.long().flatten(), truth.long().flatten(),
                                                     len(self.classes)), list(self.classes))

    @torch.no_grad()
    def batch_accuracy(self, model, batch) -> tuple[int, int]:
        """Labelled pixels predicted right, labelled pixels."""
        images, masks = batch
        valid = masks != IGNORE
        return int(((model(self.prepare(images)).argmax(1) == masks) & valid).sum()), int(valid.sum())

    def write_plots(self, run_dir, history, model, data, metrics) -> list[str]:
        from cnnlab.tasks import segment_plots

        return segment_plots.write_all(self, run_dir, history, model, data, metrics)

    # ------------------------------------------------------------------ rendering
    def headline(self, m: dict) -> str:
        return f"mean IoU {m['miou']:.4f}  pixel accuracy {m['pixel_acc']:.4f}"

    def format_metrics(self, m: dict) -> str:
        views = m.get("tta_views") or []
        lines = [f"{m['data']} / {m['split']}: {m['count']} images, {m['pixels']:,} labelled pixels"
                 + (f", test-time augmentation level {m['tta']}: {' + '.join(views)}" if m.get("tta") else ""),
                 f"mean IoU {m['miou']:.4f}   pixel accuracy {m['pixel_acc']:.4f}   "
                 f"class-average accuracy {m['mean_class_acc']:.4f}   loss {m['loss']:.4f}",
                 f"{'class':>16} {'IoU':>6} {'acc':>6} {'pixels':>10}"]
        for c, r in m["per_class"].items():
            iou, acc = (f"{v:6.3f}" if v is not None else "   n/a" for v in (r["iou"], r["acc"]))
            lines.append(f"{c[:16]:>16} {iou} {acc} {r['pixels']:10,}")
        return "\n".join(lines)

    def metrics_json(self, m: dict, full: bool = False) -> dict:
        return m if full else {**super().metrics_json(m), "per_class_iou": m["per_class_iou"]}

    def format_prediction(self, r: dict) -> str:
        h, w = r["size"]
        lines = [f"{r['image']}: {w}x{h} pixels"]
        lines += [f"  {name[:20]:>20} {100 * share:5.1f}% {'#' * round(40 * share)}" for name, share in r["shares"].items()]
        if r.get("mask"):
            lines.append(f"  colour mask: {r['mask']}  overlay: {r['overlay']}")
        return "\n".join(lines)

    def format_frame(self, r: dict) -> str:
        return "  ".join(f"{name} {100 * share:.1f}%" for name, share in r["shares"].items())


# ---------------------------------------------------------------------- metrics
def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = IGNORE) -> Tensor:
    """(K, K) int64 pixel counts, rows = true class, columns = predicted; ``ignore_index`` left out."""
    return multiclass_confusion_matrix(pred, target, num_classes, ignore_index=ignore_index,
                                       validate_args=False).long()


def segmentation_metrics(confusion: Tensor, classes: list[str]) -> dict:
    """IoU per class = TP / (TP + FP + FN); mIoU averages the classes that occur (in truth or
    prediction); pixel accuracy = TP / pixels; class-average accuracy averages TP / true pixels."""
    c = confusion.double()
    tp, truth, predicted = c.diag(), c.sum(1), c.sum(0)
    union = truth + predicted - tp
    pixels = float(c.sum())
    if pixels == 0:
        raise CnnlabError("evaluation split has no labelled pixels")
    iou = tp / union  # NaN where a class is neither present nor predicted
    acc = tp / truth
    present = union > 0
    return {"score": float(iou[present].mean()), "miou": float(iou[present].mean()),
            "pixel_acc": float(tp.sum()) / pixels, "mean_class_acc": float(acc[truth > 0].mean()),
            "pixels": int(pixels), "task": "segment",
            "per_class_iou": {name: (round(float(v), 6) if p else None)
                              for name, v, p in zip(classes, iou, present)},
            "per_class": {name: {"iou": round(float(v), 6) if p else None,
                                 "acc": round(float(a), 6) if t > 0 else None, "pixels": int(t)}
                          for name, v, p, a, t in zip(classes, iou, present, acc, truth)},
            "confusion_matrix": confusion.tolist()}


def ohem_cross_entropy(logits: Tensor, masks: Tensor, weight: Tensor | None, threshold: float,
                       min_kept: float = 1 / 16) -> Tensor:
    """Cross-entropy over the hard pixels only (online hard example mining, as BiSeNet and DDRNet train).

    A labelled pixel is hard when the probability of its true class is below ``threshold``; when fewer than
    ``min_kept`` of the labelled pixels are, the threshold rises to keep that many. The loss is the
    (class-weighted) mean over the kept pixels: with threshold 1 it is ``F.cross_entropy``'s.
    """
    valid = masks != IGNORE
    count = int(valid.sum())
    if count == 0:
        return logits.sum() * 0
    losses = F.cross_entropy(logits, masks, ignore_index=IGNORE, reduction="none")  # (B, H, W), 0 where ignored
    with torch.no_grad():
        p = torch.where(valid, (-losses).exp(), 2.0)  # the true class's probability; ignored pixels: never kept
        kth = p.flatten().kthvalue(max(1, int(min_kept * count))).values
        keep = p <= kth.clamp(min=threshold)
    w = weight[torch.where(valid, masks, 0)] * keep if weight is not None else keep.to(losses.dtype)
    return (w * losses).sum() / w.sum().clamp(min=torch.finfo(losses.dtype).tiny)


def class_weights(pixel_counts: Tensor, mode: str) -> list[float] | None:
    """Loss weights from the training split's pixel counts per class.

    median: median frequency balancing (Eigen & Fergus 2015, as SegNet uses), median(f) / f_c;
    median-sqrt: its square root, half the push towards rare classes (median's over-predicts them: on CamVid
    pedestrians at 0.88 recall and 0.43 precision); inverse: 1 / f_c scaled to mean 1; none: no weights.
    Classes absent from train get weight 0.
    """
    if mode not in CLASS_WEIGHTS:
        raise CnnlabError(f"class_weights {mode!r}: expected one of {', '.join(CLASS_WEIGHTS)}")
    if mode == "none":
        return None
    f = pixel_counts.double() / pixel_counts.sum().clamp(min=1)
    seen = f > 0
    w = torch.zeros_like(f)
    w[seen] = 1 / f[seen] if mode == "inverse" else f[seen].median() / f[seen]
    if mode == "median-sqrt":
        w = w.sqrt()
    if mode == "inverse":
        w[seen] /= w[seen].mean()
    return [round(float(v), 6) for v in w]


def _backbone_name(cfg) -> str:
    """The model whose pretrained weights (and normalisation) a run uses."""
    if cfg.task_config.backbone:
        return cfg.task_config.backbone
    if model_info(cfg.model).task != "segment":
        return cfg.model
    return cfg.model_args.get("backbone", cfg.model)
