"""Object detection: boxes and classes with the R-CNN family, scored by COCO mAP.

The model follows torchvision's detection contract: in training mode ``model(images, targets)``
returns a dict of losses (RPN objectness and box terms, classifier and box regression); in
eval mode ``model(images)`` returns ``[{"boxes", "labels", "scores"}]`` per image. Models:
``fasterrcnn`` (``cnnlab.models.rcnn``) and the classic ``rcnn`` (``cnnlab.models.rcnn_classic``);
``--model lecture_cnn|resnet18|efficientnet_lite0`` means Faster R-CNN over that backbone.

Metrics are COCO's (torchmetrics ``MeanAveragePrecision`` with the pycocotools backend):
``map`` = mAP@[.5:.95] (the ``score``), ``map50``, ``map75``, per-class AP (also at IoU 0.5) and AR@100.
"""
from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from cnnlab.errors import CnnlabError
from cnnlab.models import get_model, model_info
from cnnlab.tasks.base import Task, clean_names
from cnnlab.tasks.options import DetectOptions

DETECTOR_DEFAULT = "fasterrcnn"  # what a classifier name in --model becomes: its backbone


_MODEL_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its lock
_LOCKS_LOCK = threading.Lock()


@contextmanager
def _thresholds(model: nn.Module, score: float, nms_iou: float):
    """The model's thresholds set for one prediction and restored after it (errors too); one
    thread at a time per model, so threads sharing a model never see each other's thresholds."""
    with _LOCKS_LOCK:
        lock = _MODEL_LOCKS.setdefault(model, threading.Lock())
    with lock:
        before = model.thresholds()
        model.set_thresholds(score, nms_iou)
        try:
            yield model
        finally:
            model.set_thresholds(*before)


class DetectTask(Task):
    """Detection of ``classes`` (labels 1..K; 0 is background) in images of ``input_shape``."""

    name = "detect"
    Options = DetectOptions
    score_label = "mAP@[.5:.95]"
    epoch_metrics = ("map", "map50")
    # why `cnnlab export` refuses this task (None: it exports, parity-checked)
    export_refusal = ("torchvision's Faster R-CNN post-processing (NMS, per-image box lists) does not "
                      "trace with a fixed-shape parity check yet")
    explainable = False  # explain opens up classifiers only
    autocast = False  # fp32: box regression and RoIAlign keep their precision (mAP@.75 needs it)

    def __init__(self, classes: list[str], input_shape: tuple[int, int, int], flip: bool = False,
                 normalization: dict | None = None):
        self.classes, self.input_shape, self.flip = clean_names(classes), tuple(int(v) for v in input_shape), flip
        # Faster R-CNN's {"image_mean", "image_std"}: set when the model is first built (they follow
        # its backbone's pretrained weights), then kept, so a checkpoint rebuilds the same input scale
        self.normalization = dict(normalization) if normalization else None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_data(cls, cfg, train) -> "DetectTask":
        if not hasattr(train, "targets"):
            raise CnnlabError(f"--data {cfg.data}: not a detection dataset (no boxes)")
        c, h, w = train.image_shape
        return cls(train.classes, (c, h, w), cfg.flip)

    @classmethod
    def from_state(cls, state: dict) -> "DetectTask":
        return cls(state["classes"], tuple(state["input_shape"]), state.get("flip", False),
                   state.get("normalization"))

    def state(self) -> dict:
        return {"name": self.name, "classes": self.classes, "input_shape": list(self.input_shape),
                "flip": self.flip, **({"normalization": self.normalization} if self.normalization else {})}

    def build_model(self, cfg) -> nn.Module:
        """``cfg.model`` if it is a detector, else Faster R-CNN with ``cfg.model`` as backbone."""
        name, kwargs = cfg.model, dict(cfg.model_args)
        if model_info(name).task != "detect":
            name, kwargs = DETECTOR_DEFAULT, {"backbone": cfg.model, **kwargs}
        c, h, w = self.input_shape
        if name == "fasterrcnn":  # the data's own size: no upsampling unless asked for
            kwargs.setdefault("min_size", min(h, w))
            kwargs.setdefault("max_size", max(h, w))
            kwargs = {**(self.normalization or {}), **kwargs}
        model = get_model(name, num_classes=len(self.classes) + 1, in_channels=c, pretrained=cfg.pretrained,
                          **kwargs)
        if name == "fasterrcnn" and self.normalization is None:
            self.normalization = {"image_mean": [float(v) for v in model.transform.image_mean],
                                  "image_std": [float(v) for v in model.transform.image_std]}
        if cfg.freeze_backbone:
            if not hasattr(model, "backbone"):
                raise CnnlabError(f"--freeze-backbone: model {name!r} has no separate backbone")
            for p in model.backbone.stages.parameters():
                p.requires_grad_(False)
        return model

    # ------------------------------------------------------------------ tensors
    @staticmethod
    def prepare(images: Tensor) -> list[Tensor]:
        """uint8 (B, C, H, W) -> B float (C, H, W) images in 0..1 (the model normalises them)."""
        return list(images.float().div_(255).unbind(0))

    def augment(self, images: Tensor, targets: list[dict], generator: torch.Generator) -> tuple[Tensor, list[dict]]:
        """Random horizontal flip (with ``flip``), each image's boxes mirrored with it."""
        if not self.flip:
            return images, targets
        w = images.shape[-1]
        flip = torch.rand(len(images), generator=generator, device=images.device) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        sign = torch.tensor([-1.0, 1, -1, 1], device=images.device)
        shift = torch.tensor([float(w), 0, w, 0], device=images.device)
        targets = [{**t, "boxes": t["boxes"][:, [2, 1, 0, 3]] * sign + shift} if f else t
                   for t, f in zip(targets, flip.tolist())]
        return images, targets

    def training_step(self, model, batch, generator, *, cache=None):
        images, targets = self.augment(*batch, generator)
        losses = model(self.prepare(images), targets)
        return losses, {"count": len(images)}

    # ------------------------------------------------------------------ metrics
    @torch.no_grad()
    def evaluate(self, model, batches, dist, *, cache=None, tta: int = 0) -> dict:
        """COCO mAP@[.5:.95] (``score``), mAP@.5, mAP@.75, per-class AP and AR over ``batches``."""
        model.eval()
        preds, targets = [], []
        for images, t in batches.epoch(0):
            preds += [{k: v.float().cpu() if k != "labels" else v.cpu() for k, v in p.items()}
                      for p in model(self.prepare(images))]
            targets += [{k: v.cpu() for k, v in x.items()} for x in t]
        m = detection_metrics(preds, targets, self.classes, distributed=dist.enabled)
        m["errors"] = error_counts(preds, targets, self.classes, dist, device=batches.device)
        return m

    # ------------------------------------------------------------------ prediction
    @torch.no_grad()
    def predict(self, lm, images: list, options: DetectOptions) -> list[dict]:
        """``[{"image", "width", "height", "detections": [{"class", "score", "box"}], ...}]`` with
        boxes (x0, y0, x1, y1) in the image's own pixels; ``proposals`` (top region proposals)
        with ``show_proposals``; with ``out``, a drawing of each image there (``figure``)."""
        from cnnlab.images import read_image, resize
        from cnnlab.tasks import detect_plots

        c, h, w = self.input_shape
        show_proposals, proposals, out = options.show_proposals, options.proposals, options.out
        model = lm.model.eval()
        results = []
        with _thresholds(model, options.score_threshold, options.nms_iou):
            for source in images:
                original = source if isinstance(source, Tensor) else read_image(source, channels=c)  # (C, H0, W0)
                h0, w0 = original.shape[1:]
                x = self.prepare(resize(original, (h, w))[None].to(lm.device))
                scale = torch.tensor([w0 / w, h0 / h, w0 / w, h0 / h])
                p = model(x)[0]
                boxes = p["boxes"].float().cpu() * scale
                r = {"image": str(source) if not isinstance(source, Tensor) else "tensor", "width": w0, "height": h0,
                     "detections": [{"class": self.classes[int(lab) - 1], "score": round(float(s), 4),
                                     "box": [round(float(v), 1) for v in b]}
                                    for b, lab, s in zip(boxes, p["labels"], p["scores"])]}
                if show_proposals:
                    props = model.propose(x, top=proposals)[0].float().cpu() * scale
                    r["proposals"] = [[round(float(v), 1) for v in b] for b in props]
                if out is not None:
                    r["figure"] = str(detect_plots.draw_prediction(original, r, Path(out), self.classes))
                results.append(r)
        return results

    def write_plots(self, run_dir, history, model, data, metrics) -> list[str]:
        from cnnlab.tasks import detect_plots

        return detect_plots.write_all(self, run_dir, history, model, data, metrics)

    # ------------------------------------------------------------------ rendering
    def headline(self, m: dict) -> str:
        return f"mAP@[.5:.95] {m['map']:.4f}  mAP@.5 {m['map50']:.4f}  mAP@.75 {m['map75']:.4f}"

    def format_metrics(self, m: dict) -> str:
        lines = [f"{m['data']} / {m['split']}: {m['count']} images",
                 f"mAP@[.5:.95] {m['map']:.4f}   mAP@.5 {m['map50']:.4f}   mAP@.75 {m['map75']:.4f}   "
                 f"AR@100 {m['mar_100']:.4f}   ({m['boxes']} boxes)",
                 f"{'class':>16} {'AP':>6} {'AP@.5':>6} {'AR@100':>7}"]
        lines += [f"{c[:16]:>16} {ap:6.3f} {m['per_class_ap50'][c]:6.3f} {m['per_class_ar'][c]:7.3f}"
                  for c, ap in m["per_class_ap"].items()]
        if m.get("errors"):
            from cnnlab.tasks.error_analysis import format_detection_errors

            lines.append(format_detection_errors(m["errors"]))
        return "\n".join(lines)

    def format_prediction(self, r: dict) -> str:
        lines = [f"{r['image']}: {len(r['detections'])} objects ({r['width']}x{r['height']})"]
        lines += [f"  {d['class'][:20]:>20} {d['score']:.3f}  box {', '.join(f'{v:.1f}' for v in d['box'])}"
                  for d in r["detections"]]
        if r.get("figure"):
            lines.append(f"  drawn: {r['figure']}")
        return "\n".join(lines)


def error_counts(preds: list[dict], targets: list[dict], classes: list[str], dist, device=None) -> dict:
    """Per class: true positives, false positives and missed boxes (error_analysis.detection_errors),
    summed over processes."""
    from cnnlab.runtime.distributed import all_reduce_sum
    from cnnlab.tasks.error_analysis import detection_errors

    per_class = detection_errors(preds, targets, classes)["per_class"]
    counts = torch.tensor([[r["tp"], r["fp"], r["missed"]] for r in per_class.values()], device=device)
    all_reduce_sum(counts, dist)
    return {c: {"tp": a, "fp": b, "missed": n} for c, (a, b, n) in zip(classes, counts.tolist())}


def detection_metrics(preds: list[dict], targets: list[dict], classes: list[str],
                      distributed: bool = False) -> dict:
    """COCO metrics of ``preds`` against ``targets`` (xyxy pixel boxes, labels 1..K)."""
    import importlib.util

    from torchmetrics.detection import MeanAveragePrecision

    if importlib.util.find_spec("pycocotools") is None:
        raise CnnlabError("detection metrics need pycocotools: pip install 'cnnlab[detect]'")
    if not targets:
        raise CnnlabError("evaluation split is empty")
    metric = MeanAveragePrecision(iou_type="bbox", class_metrics=True, backend="pycocotools",
                                  sync_on_compute=distributed)
    metric.update(preds, targets)
    r = metric.compute()
    at50 = MeanAveragePrecision(iou_type="bbox", iou_thresholds=[0.5], class_metrics=True, backend="pycocotools",
                                sync_on_compute=distributed)  # per-class AP at IoU 0.5
    at50.update(preds, targets)
    r50 = at50.compute()
    ids = [int(i) for i in r["classes"].flatten().tolist()]
    ap = dict(zip(ids, r["map_per_class"].flatten().tolist()))
    ap50 = dict(zip([int(i) for i in r50["classes"].flatten().tolist()], r50["map_per_class"].flatten().tolist()))
    ar = dict(zip(ids, r["mar_100_per_class"].flatten().tolist()))
    out = {k: float(r[k]) for k in ("map", "map_50", "map_75", "map_small", "map_medium", "map_large",
                                    "mar_1", "mar_10", "mar_100")}
    out["map50"], out["map75"] = out.pop("map_50"), out.pop("map_75")
    return {"score": out["map"], **out, "count": len(targets),
            "boxes": int(sum(len(t["boxes"]) for t in targets)),
            "per_class_ap": {c: ap.get(i + 1, -1.0) for i, c in enumerate(classes)},  # -1: no boxes of it
            "per_class_ap50": {c: ap50.get(i + 1, -1.0) for i, c in enumerate(classes)},
            "per_class_ar": {c: ar.get(i + 1, -1.0) for i, c in enumerate(classes)}}
