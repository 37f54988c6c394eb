"""Faces: a face / non-face CNN on real 25x25 crops, then slid over a photo to find faces.

Data: scikit-image's ``lfw_subset`` (200 gray 25x25 crops: the first 100 are faces from
Labeled Faces in the Wild, the last 100 non-face patches). The held-out accuracy comes from
stratified k-fold cross-validation (fixed seed): each fold holds out 40 crops (20 + 20),
validates on 20 and trains on 140, with random flips and 2-pixel translations.

The detector is fold 1's model, bootstrapped as Viola and Jones did: its false positives on
photos with no human face in them (scikit-image's coffee, cat, rocket, coins, ...) are added
to the non-faces and the CNN is trained again, ``rounds`` times. Its faces are jittered copies
(zoomed and turned a little) and its non-faces also hold random windows of those photos. It is
then slid over an image pyramid of the photo (``cnnlab.experiments.face_detector``), each window
scored with its neighbours, and non-maximum suppression keeps the best boxes. The astronaut
photo is never used for training.

All of it runs on ``THREADS`` intra-op threads (``common.fixed_threads``): the float sums of a
convolution's weight gradient are split between threads, so two thread counts train two
different models from one seed.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import nms

from cnnlab.data.base import TensorImages
from cnnlab.deploy.pytorch_model import LoadedModel
from cnnlab.errors import CnnlabError
from cnnlab.experiments.face_detector import (detect, iou, plot_detections, pyramid_scales, to_gray, window_log_odds,
                                      windows_at)
from cnnlab.experiments.runs import accuracy, fixed_threads, train_model, training_seconds
from cnnlab.experiments.tables import write_table

CLASSES = ["non-face", "face"]
FACE = 1
WINDOW = 25  # pixels: the side of an LFW crop, and of every window the detector classifies
DEFAULT_OUT = Path("runs/experiments/faces")
DETECTOR = "runs/detector/last.pt"  # the detector's checkpoint, inside the experiment's folder
MODEL_ARGS = {"widths": [16, 32, 64], "hidden": 64}  # lecture_cnn: 25 -> 13 -> 7 -> 4, ~30k parameters
# The astronaut's face (skimage.data.astronaut(), 512x512) as x1, y1, x2, y2 pixels, read off the
# image with a 20-pixel grid drawn over it: hairline (y ~78) to chin (y ~182), cheek (x ~176) to
# cheek (x ~272), the extent an LFW crop covers.
ASTRONAUT_FACE = (176, 78, 272, 182)
# scikit-image photos with no human face: the sources of hard negatives (cat faces included).
NEGATIVE_PHOTOS = ("coffee", "chelsea", "cat", "rocket", "coins", "clock", "horse", "page", "text", "brick",
                   "grass", "gravel", "moon", "hubble_deep_field", "immunohistochemistry", "colorwheel",
                   "logo", "retina", "shepp_logan_phantom", "stereo_motorcycle", "cell", "checkerboard")
MINE_SIDE = 256  # pixels: negative photos are shrunk to this longer side before mining
MIN_STD = 8.0    # gray levels: the smallest window contrast that normalize_contrast stretches
FACE_ZOOM = 0.12  # the detector's face copies are zoomed by a factor within 1 +- this (half a pyramid step)
FACE_TURN = 10.0  # degrees: ... and turned by at most this
RANDOM_PER_PHOTO = 50  # random windows of each face-free photo among the detector's negatives
NEIGHBOURS = 3   # a window's face score: the mean log-odds of the 3x3 windows around it (stride apart)
THREADS = 1       # intra-op threads of all training and scoring: figures independent of the machine's count


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------

def normalize_contrast(windows: Tensor) -> Tensor:
    """Each uint8 window (N, 1, h, w) to the same brightness and contrast (mean 112, std 48).

    As Viola and Jones normalised the variance of every window: a face under studio light and
    one in shadow look alike, and the CNN cannot tell faces by brightness. A window's std is
    floored at ``MIN_STD`` so that flat patches stay flat instead of becoming amplified noise.
    """
    x = windows.float()
    mean = x.mean((-2, -1), keepdim=True)
    std = x.std((-2, -1), keepdim=True).clamp(min=MIN_STD)
    return ((x - mean) / std * 48 + 112).round().clamp(0, 255).to(torch.uint8)


def lfw_crops() -> TensorImages:
    """The 200 crops of ``skimage.data.lfw_subset()``, contrast-normalised uint8 (200, 1, 25, 25); label 1 = face."""
    data = _skimage_data()
    images = torch.from_numpy((data.lfw_subset() * 255).round().astype("uint8"))[:, None]  # (200, 1, 25, 25)
    images = normalize_contrast(images)
    labels = torch.tensor([FACE] * 100 + [1 - FACE] * 100)
    return TensorImages(images, labels, list(CLASSES), "lfw_subset")


def stratified_folds(labels: Tensor, k: int, seed: int) -> list[Tensor]:
    """``k`` disjoint index sets, each with an equal share of every class (seeded)."""
    if not 2 <= k <= int(torch.bincount(labels).min()):
        raise CnnlabError(f"folds {k}: expected 2..{int(torch.bincount(labels).min())}")
    g = torch.Generator().manual_seed(seed)
    folds: list[list[Tensor]] = [[] for _ in range(k)]
    for c in labels.unique():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        for f, part in enumerate(idx.tensor_split(k)):
            folds[f].append(part)
    return [torch.cat(f).sort().values for f in folds]


def fold_splits(data: TensorImages, folds: list[Tensor], k: int) -> dict[str, TensorImages]:
    """Fold ``k`` held out as test, half of fold ``k + 1`` (per class) as val, the rest train."""
    nxt = folds[(k + 1) % len(folds)]
    labels = data.labels[nxt]
    val = torch.cat([nxt[labels == c][: (labels == c).sum() // 2] for c in labels.unique()])
    held = torch.cat([folds[k], val])
    train = torch.tensor([i for i in range(len(data)) if i not in set(held.tolist())])
    return {"train": data.subset(train, "lfw/train"), "val": data.subset(val, "lfw/val"),
            "test": data.subset(folds[k], "lfw/test")}


def negative_photos(names: tuple[str, ...] = NEGATIVE_PHOTOS) -> dict[str, Tensor]:
    """The face-free photos as gray uint8 (1, H, W), longer side shrunk to ``MINE_SIDE``."""
    from cnnlab.images import resize

    data, photos = _skimage_data(), {}
    for name in names:
        array = getattr(data, name)()
        array = torch.from_numpy(array[0] if isinstance(array, tuple) else array)  # stereo: the left view
        image = array[None] if array.ndim == 2 else array.permute(2, 0, 1)[:3]  # (C, H, W)
        if image.dtype != torch.uint8:
            image = (image.float() * (255 / max(float(image.max()), 1e-8))).round().to(torch.uint8)
        gray = to_gray(image.contiguous())
        h, w = gray.shape[1:]
        f = MINE_SIDE / max(h, w)
        photos[name] = resize(gray, (round(h * f), round(w * f))) if f < 1 else gray
    return photos


def random_windows(photos: dict[str, Tensor], per_photo: int, seed: int, stride: int = 3) -> Tensor:
    """``per_photo`` windows of each face-free photo drawn at random over its pyramid (seeded).

    The hard negatives are the few windows most like a face; these are the rest of the world
    (cloth, print, edges, flat walls) that a face / non-face model must also call non-face.
    Returns contrast-normalised uint8 (M, 1, 25, 25).
    """
    g = torch.Generator().manual_seed(seed)
    drawn = []
    for gray in photos.values():
        h, w = gray.shape[1:]
        windows = torch.cat([windows_at(gray, scale, WINDOW, stride)[0]
                             for scale in pyramid_scales(h, w, WINDOW, min_face=WINDOW)])
        drawn.append(windows[torch.randperm(len(windows), generator=g)[:per_photo]])
    return normalize_contrast(torch.cat(drawn))


def mine_negatives(lm: LoadedModel, photos: dict[str, Tensor], per_photo: int = 25, stride: int = 3) -> Tensor:
    """The ``per_photo`` windows of each face-free photo that ``lm`` finds most face-like.

    Overlapping windows are thinned by NMS first, so the hard negatives are different places.
    Returns uint8 (M, 1, 25, 25).
    """
    mined = []
    for gray in photos.values():
        h, w = gray.shape[1:]
        windows, boxes, scores = [], [], []
        for scale in pyramid_scales(h, w, WINDOW, min_face=WINDOW):
            win, box, _ = windows_at(gray, scale, WINDOW, stride)
            windows.append(win)
            boxes.append(box)
            scores.append(window_log_odds(lm, win, FACE, normalize_contrast))  # log-odds: no ties at p = 1.0
        windows, boxes, scores = torch.cat(windows), torch.cat(boxes), torch.cat(scores)
        keep = nms(boxes, scores, 0.3)[:per_photo]
        mined.append(normalize_contrast(windows[keep]))
    return torch.cat(mined)


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------

def train_face_cnn(splits: dict[str, TensorImages], name: str, out: Path, epochs: int, seed: int,
                   log=None):
    """lecture_cnn (16-32-64) on 25x25 crops with flips and 2-pixel translations; (run, model).

    The model is the one at the end of the schedule (``last.pt``): 20 validation crops are too
    few to pick an epoch by (many epochs tie at 95-100%).
    """
    with fixed_threads(THREADS):
        return train_model(f"faces/{name}", splits, "lecture_cnn", MODEL_ARGS, out / "runs" / name, epochs=epochs,
                           batch_size=32, seed=seed, flip=True, translate=2, checkpoint="last.pt",
                           deterministic=True, log=log)


def jitter_faces(faces: Tensor, copies: int, seed: int) -> Tensor:
    """The uint8 crops (N, 1, 25, 25) and ``copies - 1`` jittered copies of each: (N * copies, 1, 25, 25).

    Each copy is zoomed by up to ``FACE_ZOOM`` and turned by up to ``FACE_TURN`` degrees about the
    centre (border pixels repeated), then contrast-normalised again. A face in a photo is framed
    within a pyramid step (1.25x) of some window and rarely exactly upright, so the detector learns a
    range of framings rather than one copy of each LFW crop repeated ``copies`` times.
    """
    if copies <= 1:
        return faces
    g = torch.Generator().manual_seed(seed)
    x = faces.repeat(copies - 1, 1, 1, 1).float()  # (M, 1, 25, 25)
    m = len(x)
    zoom = 1 + (torch.rand(m, generator=g) * 2 - 1) * FACE_ZOOM  # > 1: the face fills more of the window
    turn = (torch.rand(m, generator=g) * 2 - 1) * math.radians(FACE_TURN)
    cos, sin = turn.cos() / zoom, turn.sin() / zoom
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros(m)], 1),
                         torch.stack([sin, cos, torch.zeros(m)], 1)], 1)  # (M, 2, 3) output -> input
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    moved = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return torch.cat([faces, normalize_contrast(moved.round().clamp(0, 255).to(torch.uint8))])


def with_negatives(splits: dict[str, TensorImages], negatives: Tensor, seed: int = 0) -> dict[str, TensorImages]:
    """``splits`` with ``negatives`` added to train, and jittered copies of the faces to balance the classes."""
    train = splits["train"]
    faces = train.images[train.labels == FACE]
    others = torch.cat([train.images[train.labels != FACE], negatives])
    repeat = max(1, round(len(others) / len(faces)))
    images = torch.cat([jitter_faces(faces, repeat, seed), others])
    labels = torch.cat([torch.full((len(faces) * repeat,), FACE), torch.full((len(others),), 1 - FACE)])
    return {**splits, "train": TensorImages(images, labels, list(CLASSES), "lfw+negatives/train")}


def train_detector(splits: dict[str, TensorImages], lm: LoadedModel, out: Path, epochs: int, rounds: int,
                   seed: int, log=print, photos: tuple[str, ...] = NEGATIVE_PHOTOS) -> tuple[LoadedModel, list[dict]]:
    """Bootstrap ``lm`` ``rounds`` times with hard negatives from ``photos`` (scikit-image names);
    the last model and a row per round."""
    with fixed_threads(THREADS):  # mining scores windows: the same negatives whatever the machine
        return _train_detector(splits, lm, out, epochs, rounds, seed, log, negative_photos(photos))


def _train_detector(splits, lm, out, epochs, rounds, seed, log, photos) -> tuple[LoadedModel, list[dict]]:
    background = random_windows(photos, RANDOM_PER_PHOTO, seed)
    negatives = torch.zeros(0, 1, WINDOW, WINDOW, dtype=torch.uint8)
    rows = []
    for r in range(1, rounds + 1):
        negatives = torch.cat([negatives, mine_negatives(lm, photos)])
        boosted = with_negatives(splits, torch.cat([background, negatives]), seed + r)
        name = "detector" if r == rounds else f"detector-round{r}"
        run, lm = train_face_cnn(boosted, name, out, epochs, seed)
        rows.append({"model": f"detector, round {r}", "train": len(boosted["train"]), "mined": len(negatives),
                     "held_out": len(splits["test"]),
                     "held_out_acc": accuracy(lm, splits["test"].images, splits["test"].labels),
                     "train_s": training_seconds(run), "checkpoint": str(run.out / "last.pt")})
        log(f"round {r}: {len(negatives)} hard negatives and {len(background)} random windows of {len(photos)} "
            f"face-free photos, held-out accuracy {rows[-1]['held_out_acc']:.2%}")
    return lm, rows


# ---------------------------------------------------------------------------------------------
# detection
# ---------------------------------------------------------------------------------------------

def load_detector(checkpoint: str | Path) -> LoadedModel:
    """A face / non-face checkpoint; a clear error for anything else."""
    if not Path(checkpoint).is_file():
        raise CnnlabError(f"{checkpoint}: no face model there; run `cnnlab experiment faces` "
                          f"(it writes {DEFAULT_OUT / DETECTOR}) or pass --checkpoint")
    lm = LoadedModel.from_checkpoint(checkpoint)
    if list(getattr(lm.task, "classes", [])) != CLASSES or tuple(lm.task.input_shape) != (1, WINDOW, WINDOW):
        raise CnnlabError(f"{checkpoint}: not a face / non-face model on 1x{WINDOW}x{WINDOW} crops "
                          f"(classes {getattr(lm.task, 'classes', None)})")
    return lm


def find_faces(lm: LoadedModel, image: Tensor, threshold: float = 0.9, scales: list[float] | None = None,
               stride: int = 2, min_face: int | None = None, max_face: int | None = None) -> dict:
    """Faces in a uint8 (C, H, W) image: ``detect`` with the face class and 25-pixel windows,
    each scored by the mean log-odds of the ``NEIGHBOURS x NEIGHBOURS`` windows around it."""
    return detect(lm, image, positive=FACE, window=WINDOW, scales=scales, threshold=threshold,
                  stride=stride, min_face=min_face, max_face=max_face, prepare=normalize_contrast,
                  neighbours=NEIGHBOURS)


def astronaut() -> Tensor:
    """scikit-image's astronaut photo, uint8 (3, 512, 512)."""
    return torch.from_numpy(_skimage_data().astronaut()).permute(2, 0, 1).contiguous()


# ---------------------------------------------------------------------------------------------
# the experiment
# ---------------------------------------------------------------------------------------------

COLUMNS = [("model", "model", ""), ("train", "train crops", ",d"), ("mined", "mined negatives", ",d"),
           ("held_out", "held-out crops", ",d"), ("held_out_acc", "held-out acc", ".2%"),
           ("train_s", "training s", ".1f")]


def run(folds: int = 5, epochs: int = 30, rounds: int = 2, threshold: float = 0.9, seed: int = 0,
        photos: int = len(NEGATIVE_PHOTOS), stride: int = 2, out: str | Path = DEFAULT_OUT, log=print) -> dict:
    """Cross-validated face / non-face accuracy, a bootstrapped detector, and faces in the astronaut.

    ``photos``: how many of ``NEGATIVE_PHOTOS`` (in order) the detector's negatives come from;
    ``stride``: the astronaut scan's window step in pyramid pixels (fewer of either: a quicker,
    weaker detector, as tests use). Writes ``faces.json``, ``faces.md`` and ``faces.png``
    (detections and the heat map of face scores) to ``out``, and the detector's checkpoint to
    ``out/runs/detector/last.pt``. Everything runs on ``THREADS`` intra-op threads with
    deterministic algorithms, so the figures do not depend on the machine's thread count
    (``OMP_NUM_THREADS``).
    """
    if not 1 <= photos <= len(NEGATIVE_PHOTOS):
        raise CnnlabError(f"photos {photos}: expected 1..{len(NEGATIVE_PHOTOS)} face-free photos")
    if rounds < 1:
        raise CnnlabError(f"rounds {rounds}: expected at least 1 bootstrap round")
    with fixed_threads(THREADS):
        return _run(folds, epochs, rounds, threshold, seed, NEGATIVE_PHOTOS[:photos], stride, Path(out), log)


def _run(folds: int, epochs: int, rounds: int, threshold: float, seed: int, photos: tuple[str, ...], stride: int,
         out: Path, log) -> dict:
    data = lfw_crops()
    parts = stratified_folds(data.labels, folds, seed)
    rows, models = [], {}
    for k in range(folds):
        splits = fold_splits(data, parts, k)
        run_, lm = train_face_cnn(splits, f"fold{k + 1}", out, epochs, seed)
        models[k] = (splits, lm)
        rows.append({"model": f"fold {k + 1} of {folds}", "train": len(splits["train"]), "mined": 0,
                     "held_out": len(splits["test"]),
                     "held_out_acc": accuracy(lm, splits["test"].images, splits["test"].labels),
                     "train_s": training_seconds(run_)})
        log(f"fold {k + 1}/{folds}: held-out accuracy {rows[-1]['held_out_acc']:.2%} on {len(splits['test'])} crops")
    mean = sum(r["held_out_acc"] for r in rows) / folds
    low = min(r["held_out_acc"] for r in rows)
    rows.append({"model": f"mean of {folds} folds", "held_out": len(data), "held_out_acc": mean})
    splits, lm = models[0]
    lm, boot = train_detector(splits, lm, out, epochs, rounds, seed, log, photos)
    rows.extend(boot)

    photo = astronaut()
    found = find_faces(lm, photo, threshold=threshold, stride=stride)
    boxes = [{"box": [round(v, 1) for v in b], "score": round(s, 4)}
             for b, s in zip(found["boxes"].tolist(), found["scores"].tolist())]
    best_iou = iou(found["boxes"][0], ASTRONAUT_FACE) if boxes else 0.0
    detection = {"image": "skimage.data.astronaut()", "truth": list(ASTRONAUT_FACE), "threshold": threshold,
                 "boxes": boxes, "top_iou": best_iou, "windows": found["windows"],
                 "scales": [round(s, 4) for s in found["scales"]]}
    log(f"astronaut: {len(boxes)} detections; the best, {boxes[0]['box'] if boxes else None}, "
        f"has IoU {best_iou:.2f} with the face")
    notes = [f"data: skimage.data.lfw_subset(), 100 faces + 100 non-faces, 25x25 gray; {folds}-fold stratified "
             f"cross-validation (seed {seed}): each fold holds out {rows[0]['held_out']} crops, "
             f"validates on 20, trains on {rows[0]['train']}",
             f"model: lecture_cnn {MODEL_ARGS}, {epochs} epochs, batch 32, random flip + 2-px translation",
             f"held-out accuracy: mean {mean:.2%} over the folds, lowest fold {low:.2%} (bar: 95%)",
             f"detector: fold 1's model bootstrapped {rounds} times on its faces (jittered copies: zoom "
             f"+-{FACE_ZOOM:.0%}, turn +-{FACE_TURN:.0f} deg), {RANDOM_PER_PHOTO} random windows of each of "
             f"{len(photos)} face-free scikit-image photos and the hard negatives mined from them; its "
             f"held-out accuracy is on fold 1's 40 crops",
             f"reproducible: trained and scored on {THREADS} intra-op thread(s) with deterministic algorithms, "
             f"whatever OMP_NUM_THREADS says",
             f"astronaut: {found['windows']:,} windows over {len(found['scales'])} scales (faces "
             f"{WINDOW / found['scales'][0]:.0f}-{WINDOW / found['scales'][-1]:.0f} px), each scored by the mean "
             f"log-odds of the {NEIGHBOURS}x{NEIGHBOURS} windows around it, threshold {threshold}, "
             f"NMS IoU 0.3: {len(boxes)} boxes; the best {boxes[0]['box'] if boxes else '-'} "
             f"(score {boxes[0]['score'] if boxes else 0:.3f}) has IoU {best_iou:.2f} with the face "
             f"{list(ASTRONAUT_FACE)} (bar: 0.5)"]
    files = write_table(out, "faces", rows, COLUMNS, "Faces: a face / non-face CNN and a sliding-window detector",
                        notes, extra={"mean_held_out_acc": mean, "detection": detection, "seed": seed})
    files["figure"] = plot_detections(photo, found, out / "faces.png", truth=ASTRONAUT_FACE,
                                      title=f"best box IoU {best_iou:.2f} with the face (dashed)")
    files["checkpoint"] = str(out / DETECTOR)
    return {"name": "faces", "rows": rows, "mean_held_out_acc": mean, "detection": detection, "files": files,
            "notes": notes}


def _skimage_data():
    try:
        import skimage.data
    except ImportError:
        raise CnnlabError("the faces experiment reads scikit-image's sample data: "
                          "pip install 'cnnlab[images]' (scikit-image)") from None
    return skimage.data
