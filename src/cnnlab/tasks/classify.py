"""Image classification: softmax over classes, cross-entropy, top-1/top-5, confusion matrix."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.functional.classification import multiclass_confusion_matrix

from cnnlab.data.augment import augment
from cnnlab.runtime.distributed import all_reduce_sum
from cnnlab.errors import CnnlabError
from cnnlab.models import get_model, model_info
from cnnlab.tasks.base import Task, clean_names
from cnnlab.tasks.options import ClassifyOptions
from cnnlab.tasks.tensors import input_stats, normalise

CONFUSED_SHOWN = 10  # most confused pairs eval prints (all go to most_confused.csv)


class ClassifyTask(Task):
    """Classification of whole images into ``classes``.

    mean/std: per-channel normalisation on the 0..1 scale (the pretrained weights' own, or
    measured on the training split); input_shape: (C, H, W) the model is fed.
    """

    name = "classify"
    Options = ClassifyOptions
    score_label = "top-1"
    epoch_metrics = ("loss", "top1", "top5")
    bf16_end_to_end = True  # amp bf16-full: convolutions, norms and pooling all take bf16
    export_refusal = None  # ONNX and TorchScript export with a parity check (deploy/export.py)
    explainable = True  # explain: feature maps, filters, class activation maps (explain/)
    video = True  # predict_frames: each frame above a strip naming its most probable classes

    def __init__(self, classes: list[str], mean: list[float], std: list[float],
                 input_shape: tuple[int, int, int], flip: bool = False, translate: int = 0,
                 label_smoothing: float = 0.0):
        self.classes, self.mean, self.std = clean_names(classes), list(mean), list(std)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.flip, self.translate, self.label_smoothing = flip, translate, label_smoothing

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_data(cls, cfg, train) -> "ClassifyTask":
        info = model_info(cfg.model)
        c, h, w = train.image_shape
        if cfg.image_size:
            h = w = cfg.image_size
        mean, std = input_stats(cfg, cfg.model, train)
        if cfg.pretrained:
            c = info.input_size[0]
        return cls(train.classes, mean, std, (c, h, w), cfg.flip, cfg.translate, cfg.label_smoothing)

    @classmethod
    def from_state(cls, state: dict) -> "ClassifyTask":
        return cls(state["classes"], state["mean"], state["std"], tuple(state["input_shape"]),
                   state.get("flip", False), state.get("translate", 0), state.get("label_smoothing", 0.0))

    def state(self) -> dict:
        return {"name": self.name, "classes": self.classes, "mean": self.mean, "std": self.std,
                "input_shape": list(self.input_shape), "flip": self.flip, "translate": self.translate,
                "label_smoothing": self.label_smoothing}

    def build_model(self, cfg) -> nn.Module:
        kwargs = dict(cfg.model_args)
        model = get_model(cfg.model, num_classes=len(self.classes), in_channels=self.input_shape[0],
                          pretrained=cfg.pretrained, **kwargs)
        if cfg.freeze_backbone:
            for p in model.parameters():
                p.requires_grad_(False)
            for p in model.get_submodule(model_info(cfg.model).head).parameters():
                p.requires_grad_(True)  # the classifier head the registry names
        return model

    # ------------------------------------------------------------------ tensors
    def prepare(self, images: Tensor) -> Tensor:
        """uint8 (B, C, H, W) on the device -> normalised float model input, on the device."""
        return normalise(images, self.input_shape, self.mean, self.std, self.channels_last)

    def training_step(self, model, batch, generator, *, cache=None):
        images, labels = batch
        images = augment(images, generator, flip=self.flip, translate=self.translate)
        logits = model(self.prepare(images))
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        correct = (logits.argmax(1) == labels).sum()
        return {"loss": loss}, {"correct": correct, "count": len(labels)}

    def tta_views(self, level: int) -> list[str]:
        """The names of the views ``logits(..., tta=level)`` (and so ``evaluate``) averages."""
        return tta_view_names(*self._tta(level))

    def _tta(self, level: int) -> tuple[bool, bool]:
        """(mirror, 1-pixel shifts) at test-time augmentation ``level``: only the views the model
        trained on, the mirror image when it trained with ``flip``, shifts (level 2) with ``translate``."""
        if level not in (0, 1, 2):
            raise CnnlabError(f"--tta: expected 0 (none), 1 (mirror) or 2 (mirror + shifts), got {level!r}")
        return level >= 1 and self.flip, level >= 2 and self.translate >= 1

    @torch.no_grad()
    def logits(self, model: nn.Module, images: Tensor, tta: int = 0) -> Tensor:
        """Float logits (B, K); averaged over augmented views at test-time augmentation level ``tta``."""
        x = self.prepare(images)
        mirror, shift = self._tta(tta)
        if not (mirror or shift):
            return model(x).float()
        return tta_logits(model, x, mirror, shift)

    def predict(self, lm, images: list, options: ClassifyOptions) -> list[dict]:
        """``[{"image", "top": [{"class", "prob"}, ...]}]`` for image files (or uint8 tensors)."""
        batch = torch.stack([lm.read(p) for p in images])  # (B, C, H, W) uint8
        probs = lm.logits(batch).softmax(1).cpu()
        k = min(options.topk, probs.shape[1])
        results = []
        for path, p in zip(images, probs):
            values, idx = p.topk(k)
            results.append({"image": str(path),
                            "top": [{"class": self.classes[i], "prob": round(float(v), 6)}
                                    for v, i in zip(values, idx.tolist())]})
        return results

    def predict_frames(self, lm, frames: list[Tensor], options: ClassifyOptions) -> list[tuple[dict, Tensor]]:
        """Per frame ``{"top": [{"class", "prob"}, ...]}`` and the frame above a strip naming its
        most probable classes."""
        from cnnlab.tasks import classify_plots

        found = []
        for frame, r in zip(frames, self.predict(lm, frames, options)):
            found.append(({"top": r["top"]}, classify_plots.video_frame(frame, self.format_frame(r))))
        return found

    # ------------------------------------------------------------------ metrics
    @torch.no_grad()
    def evaluate(self, model, batches, dist, *, cache=None, tta: int = 0) -> dict:
        """top-1/top-5 accuracy and error, loss, confusion matrix, per-class precision/recall;
        ``tta``: averaged over test-time views (``tta_views``)."""
        k = len(self.classes)
        device = batches.device
        confusion = torch.zeros(k, k, dtype=torch.int64, device=device)
        sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, top-5 hits, count
        model.eval()
        for images, labels in batches.epoch(0):
            logits = self.logits(model, images, tta)
            confusion += multiclass_confusion_matrix(logits.argmax(1), labels, num_classes=k)
            top5 = logits.topk(min(5, k), dim=1).indices
            sums += torch.stack([F.cross_entropy(logits, labels, reduction="sum").double(),
                                 (top5 == labels[:, None]).any(1).sum().double(),
                                 torch.tensor(float(len(labels)), device=device, dtype=torch.float64)])
        all_reduce_sum(confusion, dist)
        all_reduce_sum(sums, dist)
        return classification_metrics(confusion.cpu(), sums.cpu(), self.classes)

    @torch.no_grad()
    def batch_accuracy(self, model, batch) -> tuple[int, int]:
        images, labels = batch
        x = self.prepare(images)
        return int((model(x).argmax(1) == labels).sum()), len(labels)

    def write_plots(self, run_dir, history, model, data, metrics) -> list[str]:
        from cnnlab.tasks import classify_plots

        return classify_plots.write_all(self, run_dir, history, model, data, metrics)

    # ------------------------------------------------------------------ rendering
    def headline(self, m: dict) -> str:
        return f"top-1 accuracy {m['top1']:.4f}  top-5 {m['top5']:.4f}"

    def format_metrics(self, m: dict) -> str:
        views = m.get("tta_views") or []
        lines = [f"{m['data']} / {m['split']}: {m['count']} images"
                 + (f", test-time augmentation level {m['tta']}: {' + '.join(views)}" if m.get("tta") else "")]
        if m.get("tta") and len(views) == 1:
            lines.append("(no extra views: the model trained without flip and translate, so none is safe to average)")
        lines.append(f"top-1 accuracy {m['top1']:.4f} (error {m['top1_error']:.4f})   "
                     f"top-5 accuracy {m['top5']:.4f} (error {m['top5_error']:.4f})   loss {m['loss']:.4f}")
        lines.append(f"{'class':>16} {'precision':>9} {'recall':>7} {'support':>7}")
        lines += [f"{c[:16]:>16} {r['precision']:9.3f} {r['recall']:7.3f} {r['support']:7d}"
                  for c, r in m["per_class"].items()]
        if m.get("confusion_matrix"):  # fastai's most_confused: the pairs worth looking at first
            from cnnlab.tasks.error_analysis import format_confused, most_confused

            table = format_confused(most_confused(m["confusion_matrix"], self.classes, top=CONFUSED_SHOWN),
                                    round(m["count"] * m["top1_error"]))
            lines += [table] if table else []
        return "\n".join(lines)

    def format_prediction(self, r: dict) -> str:
        return "\n".join([r["image"]] + [f"  {t['class'][:28]:>28} {t['prob']:.3f} {'#' * round(40 * t['prob'])}"
                                         for t in r["top"]])

    def format_frame(self, r: dict) -> str:
        return "  ".join(f"{t['class']} {100 * t['prob']:.1f}%" for t in r["top"][:3])


def tta_logits(model: nn.Module, x: Tensor, mirror: bool, shift: bool) -> Tensor:
    """airbench's test-time augmentation over the views a model trained on: with ``mirror``, the
    average of the logits of each image and its mirror image; with ``shift``, also (with half the
    weight) those of the image shifted one pixel up-left and one pixel down-right, border reflected."""
    def views(v: Tensor) -> Tensor:
        return 0.5 * (model(v).float() + model(v.flip(-1)).float()) if mirror else model(v).float()

    logits = views(x)
    if shift:
        h, w = x.shape[-2:]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        logits = 0.5 * logits + 0.25 * (views(padded[..., :h, :w]) + views(padded[..., 2:, 2:]))
    return logits


def tta_view_names(mirror: bool, shift: bool) -> list[str]:
    """The views test-time augmentation averages, for the user to read."""
    return ["image"] + (["mirror"] if mirror else []) + (["1-pixel shifts"] if shift else [])


def classification_metrics(confusion: Tensor, sums: Tensor, classes: list[str]) -> dict:
    """Metrics from a confusion matrix (rows: true class, columns: predicted) and sums."""
    n = float(sums[2])
    if n == 0:
        raise CnnlabError("evaluation split is empty")
    tp = confusion.diag().double()
    precision = tp / confusion.sum(0).clamp(min=1)
    recall = tp / confusion.sum(1).clamp(min=1)
    top1 = float(tp.sum()) / n
    top5 = float(sums[1]) / n
    return {"score": top1, "top1": top1, "top5": top5, "top1_error": 1 - top1, "top5_error": 1 - top5,
            "loss": float(sums[0]) / n, "count": int(n),
            "per_class": {c: {"precision": float(p), "recall": float(r), "support": int(s)}
                          for c, p, r, s in zip(classes, precision, recall, confusion.sum(1))},
            "confusion_matrix": confusion.tolist()}
