"""A ground-truth mask uploaded beside an image: read as class ids by the data layer's own rules
(``MaskReader``: ids, palette PNGs, RGB by the task's colours), scored against the model's mask
by the segmentation task's own ``score_mask`` (its confusion matrix and metrics).

    score = truth_iou(upload, pred, task)   # {"name", "miou", "pixel_acc", "per_class", ...}
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from cnnlab.data.formats.mask_values import MaskReader, PairProblem
from cnnlab.data.masks import IGNORE
from cnnlab.serve.errors import client_errors
from cnnlab.serve.uploads import HTTPError, Limits, _header_size, client_name, request_folder, scrub


def read_truth(data: bytes, name: str, hw: tuple[int, int], task, limits: Limits,
               image: str = "the image") -> tuple[Tensor, dict]:
    """The mask file's class ids at the predicted mask's size ``hw`` ((H, W) uint8, IGNORE = 255
    left out) and what reading it changed (``resized``, ``ignored`` pixels)."""
    if not data:
        raise HTTPError(422, f"{name}: empty mask upload (0 bytes); send a PNG of class ids")
    size = _header_size(data)
    if size is None:
        raise HTTPError(415, f"{name}: not an image; a ground-truth mask is a PNG of class ids "
                             f"(0..{len(task.classes) - 1}, one per pixel)")
    if size[0] * size[1] > limits.max_pixels:
        raise HTTPError(413, f"{name}: mask is {size[0]}x{size[1]} pixels, over this service's limit of "
                             f"{limits.max_pixels:,}")
    classes = list(task.classes)
    k, two = len(classes), len(classes) == 2  # two classes saved white on black: 255 is class 1 (MaskReader's rule)
    ids_text = ", ".join(f"{i} {c}" for i, c in enumerate(classes))
    reader = MaskReader(classes, colors=[tuple(c) for c in task.colors] if task.colors else None,
                        ignore=None if two or k > IGNORE else IGNORE,
                        ignore_why="255 marks unlabelled pixels, as in VOC",
                        fix=f"save each pixel as its class id ({ids_text})" + ("" if two else " or 255 for unlabelled"))
    with request_folder() as tmp:
        path = tmp / "truth"  # Pillow reads the format from the bytes
        path.write_bytes(data)
        names = {str(path): name, str(tmp): ""}
        try:
            with client_errors(names):
                ids = reader.read(path, Path(image), hw)
        except PairProblem as e:
            raise HTTPError(422, scrub(str(e), names)) from None
    return torch.from_numpy(ids), {"resized": bool(reader.resized), "ignored": reader.ignored}


def truth_iou(upload, pred: Tensor, task, limits: Limits, image: str) -> dict:
    """Per-class IoU of this one image (named ``image``): the predicted class ids ``pred`` (H, W)
    against the uploaded ground-truth mask (an ``UploadFile``)."""
    name = client_name(upload.filename)
    truth, read = read_truth(upload.file.read(), name, tuple(pred.shape), task, limits, image)
    with client_errors():
        m = task.score_mask(pred, truth)
    return {"name": name, "miou": m["miou"], "pixel_acc": m["pixel_acc"], "pixels": m["pixels"],
            "per_class": m["per_class"], "confusion_matrix": m["confusion_matrix"], **read}
