"""The public Python API. The CLI (cli/) and the web service call these same functions.

    import cnnlab
    run = cnnlab.train(data="digits", epochs=8, out="runs/digits")
    cnnlab.evaluate("runs/digits/best.pt", data="digits")["top1"]
    cnnlab.predict("runs/digits/best.pt", ["some.png"], topk=5)

Each function imports what it runs on (the engine, torch) when called, so that the commands which
need neither (``cnnlab pixels``, ``--help``) start at once.
"""
from __future__ import annotations

import warnings
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from cnnlab.engine.config import TrainConfig
from cnnlab.errors import CnnlabError, clean
from cnnlab.figures import figure_path
from cnnlab.files import file_path, make_folder, same_file
from cnnlab.images import ImageError, format_pixels, peek_image, pixel_matrix, read_array
from cnnlab.runtime.threads import apply_thread_policy

if TYPE_CHECKING:  # the functions import torch and the engine when called: `cnnlab pixels` needs neither
    from cnnlab.deploy.predictor import Predictor
    from cnnlab.deploy.pytorch_model import LoadedModel
    from cnnlab.engine.trainer import RunResult
    from cnnlab.video import Video


def train(config: str | Path | None = None, overrides: list[str] | None = None,
          resume: str | Path | None = None, log: Callable[..., object] | None = print,
          on_epoch: Callable[[dict], object] | None = None, *,
          task: str | None = None, data: str | Path | None = None, model: str | None = None,
          pretrained: bool | None = None, epochs: int | None = None, batch_size: int | None = None,
          optimizer: str | None = None, lr: float | None = None, flip: bool | None = None,
          translate: int | None = None, device: str | None = None, seed: int | None = None,
          out: str | Path | None = None, **options) -> RunResult:
    """Train a model and write its run folder (``best.pt``, ``last.pt``, metrics, plots).

    Every option is a config key: a ``TrainConfig`` field (``cnnlab.engine.config``) or one of the
    task's own (``SegmentConfig``, ``CaptionConfig``: ``cnnlab.tasks.options``); ``cnnlab train
    --help`` lists all ~40 with their help, defaults, choices and ranges. ``None`` keeps the value
    from the defaults, the ``config`` recipe and the ``overrides``, which apply in that order; a
    value given is used even where it equals the default.

    config: a packaged recipe's name (``"fashion-mnist"``, see ``cnnlab recipes``) or a YAML file.
    overrides: ``["key=value", ...]`` as on the command line (``--set``).
    resume: a ``last.pt`` to continue: its config is used and only the options given change it.
    log: where progress lines go (``None``: nowhere, no progress bar either).
    on_epoch: ``on_epoch(row, model, task)`` after each epoch's checkpoints, ``row`` its metrics
    (a callback, ``engine/callbacks.py``: ``fit(cfg, callbacks=[...])`` takes any).
    task: ``classify`` (default), ``segment``, ``detect`` or ``caption``.
    data: a registered dataset (``digits``, ``fashion-mnist``, ``shapes``...) or a path on disk.
    model: a registered model name (``cnnlab models``); ``pretrained``: start from ImageNet weights.
    epochs, batch_size, optimizer (``sgd`` | ``adamw``), lr (0: the optimizer's default).
    flip, translate: batched augmentation (a horizontal flip; a shift of up to N pixels).
    device: ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
    seed: seeds weights, sampling and augmentation; out: the run folder (default: a new
    ``runs/TASK/NAME``, NAME the data's stem, numbered when taken; an ``out`` holding a run is
    refused unless ``exist_ok=True`` or ``resume``; its parent folder must exist).
    **options: any other config key (``weight_decay``, ``schedule``, ``amp``, ``scale``, ...).

    Returns a ``RunResult``: ``out``, ``best`` (the best validation score and its epoch), ``test``
    metrics, ``plots``, ``seconds``, ``task``.

        import cnnlab
        run = cnnlab.train(data="digits", epochs=8, out="runs/digits", log=None)
        run.test["top1"]                                   # test top-1 accuracy, a fraction
        cnnlab.train(config="fashion-mnist", epochs=2, weight_decay=1e-3)
    """
    options = {**dict(task=task, data=data, model=model, pretrained=pretrained, epochs=epochs,
                      batch_size=batch_size, optimizer=optimizer, lr=lr, flip=flip, translate=translate,
                      device=device, seed=seed, out=out), **options}
    if resume:
        from cnnlab.engine.checkpoint import load_checkpoint

        saved = TrainConfig.from_dict(load_checkpoint(resume)["config"])
        given = _given(options)
        for key in ("task", "data", "model"):  # a resume continues the same run, on the same data
            if key in given and str(given[key]) != str(getattr(saved, key)):
                raise CnnlabError(f"--{key} {given[key]}: {resume} was trained with {key} {getattr(saved, key)!r}; "
                                  f"--resume continues that run (start a new run to change {key})")
        given.setdefault("out", str(Path(resume).parent))  # beside the checkpoint, never its stored out
        cfg = TrainConfig.from_sources(config, overrides, saved=saved, **given)
    else:
        cfg = _with_defaults(config, overrides, options, log)
    apply_thread_policy()  # before the trainer loads torch: OpenMP reads its wait policy once
    from cnnlab.engine.callbacks import OnEpoch
    from cnnlab.engine.trainer import fit

    return fit(cfg, resume=resume, log=log, callbacks=[OnEpoch(on_epoch)] if on_epoch else ())


def _with_defaults(config, overrides: list[str] | None, options: dict, log) -> TrainConfig:
    """The run's config; its task read from the data, and, for a dataset on disk with no recipe
    and no model given, the task's real-data recipe adapted to the data (``engine/defaults.py``).
    The task's line and each choice's reason are logged first."""
    from cnnlab.data.layout import resolve_task
    from cnnlab.engine.defaults import default_recipe

    cfg = TrainConfig.from_sources(config, overrides, **options)
    found = resolve_task(cfg.data, cfg.task)
    lines, recipe = [found.line()] if found.on_disk else [], None
    if found.on_disk and config is None and not cfg.given & {"model", "model_args", "backbone"}:  # no model chosen
        recipe, reasons = default_recipe(found.task, cfg.data, cfg.given, count=lambda values: _train_images(
            TrainConfig.from_sources(None, overrides, recipe=values, **{**options, "task": found.task})))
        lines += reasons
    if log and os.environ.get("RANK", "0") == "0":  # under torchrun, said once
        for line in lines:
            log(line)
    return TrainConfig.from_sources(config, overrides, recipe=recipe, **{**options, "task": found.task})


def _train_images(cfg: TrainConfig) -> int:
    """How many images ``cfg``'s training split holds (read as the run will read it; quietly:
    the run reads it again and says what it finds)."""
    from cnnlab.data import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return len(load_dataset(cfg.data, "train", seed=cfg.seed, task=cfg.task, **cfg.data_options()))


def load(checkpoint: str | Path | None = None, *, model: str | None = None,
         pretrained: bool = False, device: str = "auto") -> Predictor:
    """A model ready to predict (a ``cnnlab.deploy.Predictor``): from a checkpoint (``.pt``, an
    exported ``.safetensors``, or an exported ``.onnx`` run by onnxruntime), or
    ``model=NAME, pretrained=True``."""
    from cnnlab.deploy.onnx_model import OnnxModel
    from cnnlab.deploy.pytorch_model import LoadedModel

    if checkpoint is not None:
        checkpoint = _path(checkpoint, "checkpoint", "a .pt, .safetensors or .onnx file")
        if str(checkpoint).endswith(".onnx"):
            return OnnxModel.from_file(checkpoint)
        if str(checkpoint).endswith(".safetensors"):
            return LoadedModel.from_safetensors(checkpoint, device)
        return LoadedModel.from_checkpoint(checkpoint, device)
    if model and pretrained:
        return LoadedModel.from_pretrained(model, device)
    raise CnnlabError("checkpoint: give a CHECKPOINT, or --model NAME with --pretrained")


def evaluate(checkpoint: str | Path | Predictor, data: str | None = None, split: str = "test", *,
             batch_size: int = 256, device: str = "auto", plots: str | Path | None = None,
             tta: int = 0, images: str | Path | None = None) -> dict:
    """The task's metrics of a checkpoint on a split: for a classifier top-1/top-5 accuracy and
    error, loss, per-class precision/recall, confusion matrix.

        m = cnnlab.evaluate("runs/digits/best.pt", split="test", plots="runs/digits/eval-test")
        print(m["top1"], m["plots"])                       # 0.9917 ['.../confusion_matrix.png', ...]

    ``data`` defaults to the data the checkpoint was trained on; accuracies are fractions.
    ``images``: the image folder of a COCO-style annotation file (``--images``); by default the
    training run's, when ``data`` is the training data.
    Segmentation: mean IoU, per-class IoU, pixel and class-average accuracy. ``plots``: a
    folder for the task's evaluation figures (their paths come back under ``plots``).
    ``tta`` (classification, segmentation): test-time augmentation, 1 = mirror, 2 = mirror + 1-pixel
    shifts (segmentation: mirror + 0.75x and 1.25x zooms), each only when the model trained with that
    augmentation (``flip``, ``translate``, ``scale``); ``tta_views`` says
    which views were averaged.
    """
    from cnnlab.data import load_dataset
    from cnnlab.data.check import split_changes
    from cnnlab.data.layout import refuse_other_task
    from cnnlab.data.loader import Batches
    from cnnlab.runtime.distributed import Dist

    lm = _predictor(checkpoint, "checkpoint", device)
    if not lm.evaluable:
        raise CnnlabError(f"{checkpoint}: evaluate a PyTorch checkpoint (.pt), not an export")
    if plots:
        make_folder(plots, f"--plots {plots}")  # before the work: its parent must exist
    cfg = lm.config
    spec = data or cfg.data
    opts = {k: v for k, v in cfg.data_options().items() if k != "download"}
    if images or str(spec) != str(cfg.data):  # other data: the training images folder is not its own
        opts.pop("images", None)
    if images:
        opts["images"] = str(images)
    refuse_other_task(spec, lm.task.name, lm.source or "the checkpoint")
    dataset = load_dataset(spec, split, seed=cfg.seed, task=lm.task.name, **opts)
    changed = split_changes(Path(lm.source).parent, split, dataset) if lm.source and str(spec) == str(cfg.data) else None
    if changed:
        warnings.warn(changed, stacklevel=2)
    task = lm.task.for_data(dataset, str(spec))  # the classes must match (captions: any references)
    batches = Batches(dataset, batch_size, lm.device, shuffle=False, workers=cfg.workers)
    views = task.tta_views(tta) if tta else None  # refused before the work: a bad level, another task
    metrics = task.evaluate(lm.model, batches, Dist(), tta=tta)
    metrics.pop("score")
    if plots:
        metrics["plots"] = task.write_plots(plots, [], lm.model, dataset, metrics)
    metrics.update(data=str(spec), split=split, skipped=len(getattr(dataset, "skipped", [])))
    if tta:
        metrics.update(tta=tta, tta_views=views)
    return metrics


def predict(model: str | Path | Predictor, images, *, batch_size: int = 64, **options) -> list[dict]:
    """The task's prediction for each image, one dict per image, in order.

    model: a checkpoint (``.pt``), an exported ``.onnx``, or a model from ``cnnlab.load``.
    images: one or a list of image files (paths), PIL images, NumPy arrays (H, W) or (H, W, C)
    of uint8, or uint8 tensors (C, H, W). They stream through the model ``batch_size`` at a
    time; an image that cannot be read gets ``{"image", "error"}`` and the rest go on.

    options: the checkpoint's task's prediction options, checked by the task (``None``: the task's
    default; an option of another task is an error naming the task's; ``tasks/options.py`` is their
    source; a folder may be a ``Path``):
      classify: topk=5 (the most probable classes) -> ``{"image", "top": [{"class", "prob"}...]}``
      segment: out (a folder for colour masks and overlays), alpha=0.5 -> ``{"image", "size", "shares"}``
      detect: score_threshold=0.5, nms_iou=0.5, show_proposals=False, proposals=10, out -> boxes
      caption: beam=5, max_len, length_penalty, attention=False, out -> ``{"image", "caption", ...}``

        cnnlab.predict("runs/digits/best.pt", ["digit.png", PIL.Image.open("seven.png")], topk=3)
        cnnlab.predict("runs/det/best.pt", ["scene.png"], score_threshold=0.3, out="predictions")
    """
    options = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in _given(options).items()}
    return list(predictions(_predictor(model, "model"), images, batch_size=batch_size, **options))


def predictions(model, images, *, batch_size: int = 64, **options):
    """``predict`` as a stream: each image's dict as soon as its batch is done (for thousands of
    images: nothing is kept). Options are checked, and the images listed, before the first batch.

        for r in cnnlab.api.predictions("runs/digits/best.pt", sorted(Path("photos").rglob("*.jpg"))):
            print(r["image"], r["top"][0]["class"])
    """
    lm = _predictor(model, "model")
    opts = lm.task.options(options)  # typed and range-checked before any image is read
    sources = _image_sources(images, lm.task.input_shape[0])
    if not sources:
        raise CnnlabError("images: give at least one IMAGE to predict")
    if batch_size < 1:
        raise CnnlabError(f"batch_size {batch_size}: expected at least 1")
    return _stream(lm, sources, opts, batch_size)


def predict_video(model: str | Path | Predictor, video: str | Path | Video, *, out: str | Path | None = None,
                  exist_ok: bool = False, fps: float | None = None, batch_size: int = 8,
                  **options) -> Iterator[dict]:
    """A video's predictions as a stream: ``{"frame", "time", ...}`` per frame as its batch is done
    (segmentation: ``size``, ``shares``; classification: ``top``); memory holds one batch of frames.

    video: a video file (.mp4, .avi, .mov, .mkv, .webm; PyAV: ``pip install 'cnnlab[video]'``), a
    folder of frames (image files in name order, ``fps`` frames/s, default 25) or a ``cnnlab.video.Video``.
    out: a folder for ``<stem>_overlay.mp4`` (each frame drawn with its prediction: the mask blended,
    a legend) and ``<stem>_frames.jsonl`` (a JSON line per frame); files there of those names are
    refused unless ``exist_ok``. Both appear once the stream is read to its end.

        for r in cnnlab.predict_video("runs/camvid/best.pt", "drive.mp4", out="drive", alpha=0.4):
            print(r["frame"], r["time"], r["shares"])
    """
    from cnnlab.deploy.video import check_video_task, video_outputs, video_predictions
    from cnnlab.video import Video, open_video

    lm = _predictor(model, "model")
    check_video_task(lm)
    opts = lm.task.options(options)  # typed and range-checked before any frame is read
    if batch_size < 1:
        raise CnnlabError(f"batch_size {batch_size}: expected at least 1")
    if not isinstance(video, Video):
        video = open_video(_path(video, "video", "a video file or a folder of frames"), fps)
    if out is not None:
        out = make_folder(out, f"--save {out}")
        taken = [p.name for p in video_outputs(video, out) if os.path.lexists(p)]
        if taken and not exist_ok:
            raise CnnlabError(f"--save {out}: the folder holds {' and '.join(taken)}; give --exist-ok to replace "
                              f"them, or another --save")
    return video_predictions(lm, video, opts, out, batch_size)


def _stream(lm, sources: list, opts, batch_size: int):
    for start in range(0, len(sources), batch_size):
        chunk = sources[start:start + batch_size]
        try:
            found = lm.task.predict(lm, [source for _, source in chunk], opts)
        except ImageError:  # one bad file: predict the chunk image by image, reporting the bad ones
            found = [_predict_one(lm, source, opts) for _, source in chunk]
        for (name, _), r in zip(chunk, found):
            yield {**r, "image": name}


def _predict_one(lm, source, options) -> dict:
    try:
        return lm.task.predict(lm, [source], options)[0]
    except ImageError as e:
        return {"error": clean(e)}


def _image_sources(images, channels: int) -> list[tuple[str, object]]:
    """(name, path or uint8 (C, H, W) tensor) for every input; in-memory images become tensors."""
    from cnnlab.images import as_image

    if isinstance(images, (str, Path)) or not isinstance(images, (list, tuple)):
        images = [images]
    sources = []
    for i, image in enumerate(images):
        if isinstance(image, (str, Path)):
            sources.append((str(_path(image, f"images[{i}]", "an image file")), image))
        else:
            sources.append((f"<{type(image).__name__} {i}>", as_image(image, channels, name=f"images[{i}]")))
    return sources


def export(checkpoint: str | Path | Predictor, format: str = "onnx", *, out: str | Path | None = None,
           atol: float = 1e-4, device: str = "auto") -> dict:
    """Export a checkpoint to ONNX (dynamic batch axis) or TorchScript, then check parity.

    format: ``onnx``, ``torchscript`` or ``safetensors`` (weights only, the config and task as
    metadata: every task, read back by ``cnnlab.load``); out: the file (default: beside the
    checkpoint). For ONNX and TorchScript the same inputs go through PyTorch fp32 and the export
    (onnxruntime for ONNX); above ``atol`` (the largest logit difference accepted) the export is
    refused (the file is kept as ``*.failed``). Returns ``{"path", "format", "max_abs_diff", ...}``.

        r = cnnlab.export("runs/digits/best.pt", format="onnx")   # runs/digits/best.onnx
        cnnlab.predict(r["path"], ["digit.png"])                   # run by onnxruntime
    """
    from cnnlab.deploy.export import export_model

    suffix = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "safetensors": ".safetensors"}.get(format)
    if suffix is None:
        raise CnnlabError(f"--format {format!r}: expected onnx, torchscript or safetensors")
    lm = _predictor(checkpoint, "checkpoint", device)
    if not lm.exportable:
        raise CnnlabError(f"{checkpoint}: already an export; export a PyTorch checkpoint (.pt)")
    if format == "safetensors":
        from cnnlab.deploy.weights_file import save_weights

        return save_weights(lm, _export_path(out or Path(lm.source).with_suffix(suffix), lm, suffix))
    if lm.task.export_refusal:
        raise CnnlabError(f"{checkpoint}: a {lm.task.name} checkpoint cannot be exported yet: "
                          f"{lm.task.export_refusal}; predict with `cnnlab predict` or `cnnlab serve` instead")
    out = _export_path(out or Path(lm.source).with_suffix("").with_suffix(suffix), lm, suffix)
    return export_model(lm, out, format=format, atol=atol)


def _export_path(out: str | Path, lm, suffix: str) -> Path:
    """``out`` as the export's file: not a folder, in a folder that exists, and not the checkpoint
    being exported (by any name: a hard or symbolic link to it too)."""
    out = Path(out)
    if out.is_dir():
        raise CnnlabError(f"--out {out}: a folder; expected a file name such as {out / ('model' + suffix)}")
    if lm.source and same_file(out, lm.source):
        raise CnnlabError(f"--out {out}: that is the checkpoint being exported ({lm.source}); the export would "
                          f"replace it: give another --out")
    return file_path(out, f"--out {out}")


def pixels(image: str | Path, crop: tuple[int, int, int, int] | None = None,
           size: int | None = None) -> tuple[str, tuple[int, int, int]]:
    """The image as a grid of 0-255 numbers (the lecture's Lincoln slide) and its H x W x C shape."""
    if size is not None and not (isinstance(size, int) and 1 <= size <= MAX_PIXELS_SIDE):
        raise CnnlabError(f"--size {size!r}: expected 1..{MAX_PIXELS_SIDE} (numbers per row of the printed grid)")
    if crop is not None and not (isinstance(crop, (tuple, list)) and len(crop) == 4
                                 and all(isinstance(v, int) for v in crop)):
        raise CnnlabError(f"--crop {crop!r}: expected (x, y, w, h), four integers")
    _, h, w = peek_image(_image_path(image, "image"))  # the header: a grid too large to read is refused unread
    if size is None and max(crop[2:] if crop else (h, w)) > MAX_PIXELS_SIDE:
        gh, gw = (crop[3], crop[2]) if crop else (h, w)
        raise CnnlabError(f"{clean(image)}: the grid would be {gh}x{gw} numbers, over {MAX_PIXELS_SIDE} a side; "
                          f"pass --size N (size=N) to shrink it or --crop X,Y,W,H for a region")
    img = read_array(image)  # (H, W, C), no torch: this command answers at once
    h, w, c = img.shape
    return format_pixels(pixel_matrix(img, crop=crop, size=size, name=str(image))), (h, w, c)


MAX_PIXELS_SIDE = 1000  # `cnnlab pixels --size`: a printed grid wider than this is no longer readable


def check_data(spec: str, task: str = "auto", **opts) -> dict:
    """Every split of a dataset read as training reads it, and what could go wrong: the task and
    layout found, counts per split and class, empty classes, what the readers dropped, resized or
    remapped, and duplicate images (within a split, and across splits). ``status``: ``clean``,
    ``warnings`` or ``errors`` (a split that cannot be read).

        cnnlab.check_data("../shared/data/bccd")["status"]      # 'warnings'
    """
    from cnnlab.data.check import check_dataset

    _path(spec, "spec", "a dataset name or path")
    return check_dataset(spec, task, **{k: v for k, v in opts.items() if v})


def data_info(spec: str, split: str = "train", grid: str | Path | None = None, task: str = "auto",
              **opts) -> dict:
    """Counts, classes and image size of a dataset split; optionally a sample-grid PNG.

    task: ``auto`` reads it from the data's layout (``layout`` in the result says which)."""
    from cnnlab.data import load_dataset
    from cnnlab.data.info import describe, save_sample_grid
    from cnnlab.data.layout import resolve_task

    _path(spec, "spec", "a dataset name or path")
    if grid:
        file_path(grid, f"--grid {grid}")  # before the work: its folder must exist
    found = resolve_task(spec, task)
    dataset = load_dataset(spec, split, task=found.task, **opts)
    info = describe(dataset)
    info.update(data=str(spec), split=split, task=found.task, layout=found.layout)
    if grid:
        info["grid"] = str(save_sample_grid(dataset, grid))
    return info


def model_summary(name: str, input_shape: tuple[int, int, int] | None = None, **kwargs) -> str:
    """Each layer's output volume h x w x d, parameters, stride and receptive field, as a table."""
    from cnnlab.models import format_summary, get_model, model_info, summarize

    info = model_info(_name(name, "name", "a model name (cnnlab.list_models())"))
    shape = input_shape or info.input_size
    if not isinstance(shape, (tuple, list)) or not all(isinstance(v, int) for v in shape) or len(shape) != 3 or not all(1 <= v <= 4096 for v in shape):
        raise CnnlabError(f"--input {'x'.join(map(str, shape))}: expected CxHxW with each side 1..4096")

    model = get_model(name, in_channels=shape[0], **kwargs)
    return format_summary(summarize(model, shape))


def layers(lm: LoadedModel) -> list:
    """Each layer of a loaded model at its input shape: output volume, parameters, receptive field
    (``cnnlab.models.summarize``'s rows), for front ends that draw the architecture."""
    from cnnlab.models import summarize

    return summarize(lm.model, lm.task.input_shape)


def _predictor(value, param: str, device: str = "auto") -> Predictor:
    """``value`` itself when it is a loaded model (any ``Predictor``), else the file it names, loaded."""
    from cnnlab.deploy.predictor import Predictor

    return value if isinstance(value, Predictor) else load(_path(value, param), device=device)


def _path(value, param: str, what: str = "a file path") -> Path:
    """``value`` as a path, or an error naming ``param``: a TypeError for another type, a
    CnnlabError for an empty one (``Path("")`` would silently mean the current folder)."""
    if not isinstance(value, (str, Path)):
        raise TypeError(f"{param}: expected {what} (str or Path), got {type(value).__name__}")
    if not str(value).strip():
        raise CnnlabError(f"{param}: empty; expected {what}")
    return Path(value)


def _name(value, param: str, what: str) -> str:
    """``value`` as a non-empty name, or an error naming ``param``."""
    if not isinstance(value, str):
        raise TypeError(f"{param}: expected {what} (str), got {type(value).__name__}")
    if not value.strip():
        raise CnnlabError(f"{param}: empty; expected {what}")
    return value


def _image_path(value, param: str) -> Path:
    return _path(value, param, "an image file")


def _given(options: dict) -> dict:
    return {k: v for k, v in options.items() if v is not None}


def convolve(image, kernels: list[str], stride: int = 1, padding: int | None = None,
             out: str | Path | None = "feature_maps.png") -> dict:
    """Slide hand-made kernels over an image; the feature maps as arrays (and a figure at ``out``).

    ``kernels``: names (``cnnlab.explain.KERNELS``: sharpen, edge, sobel-x, ...) or matrices
    written ``"a,b,c;d,e,f;g,h,i"``. ``padding`` None keeps the image size ("same").
    """
    from cnnlab.interpret import convolve_image, plot_feature_maps

    if out:
        file_path(figure_path(out), f"--out {out}")  # a bad --out fails before the work
    result = convolve_image(image, kernels, stride=stride, padding=padding)
    if out:
        result["figure"] = str(plot_feature_maps(result, out))
    return result


def explain_convolution(image: str | None = None, kernel: str | None = None, stride: int = 1,
                        padding: int = 0) -> str:
    """The lecture's step-by-step walk-through (default: its 5x5 image and 3x3 filter), as text."""
    from cnnlab.interpret import explain_convolution as walk_through

    return walk_through(image=image, kernel=kernel, stride=stride, padding=padding)


def explain(checkpoint: str | Path | Predictor | None = None, image: str | Path | None = None,
            out: str | Path = "explain", *, model: str | None = None, pretrained: bool = False,
            method: str = "gradcam", layer: str | None = None, target_class: str | int | None = None,
            hierarchy: str | None = None, device: str = "auto") -> dict:
    """Open up a model on one image: feature maps of every conv layer, first-layer filters,
    a class activation map (gradcam, gradcam++ or saliency) and, given a dataset, the feature
    hierarchy (the patches that most excite early, middle and late layers). Figures go to ``out``.

    checkpoint: a ``.pt`` (or a model from ``cnnlab.load``); or ``model=NAME, pretrained=True``.
    method: ``gradcam``, ``gradcam++`` or ``saliency``; layer: the CAM's layer (default: the
    last conv layer); target_class: a class name or index (default: the predicted one);
    hierarchy: a dataset whose patches most excite early/middle/late layers.
    Returns ``{"prediction": [{"class", "prob"}...], "cam": {"method", "class", "prob", "layer",
    "heatmap"}, "files": {name: path}}``.

        r = cnnlab.explain("runs/digits/best.pt", "digit.png", out="explain")
        r["cam"]["heatmap"]                                # (H, W) NumPy array in 0..1
        cnnlab.explain(None, "chelsea.png", model="efficientnet_lite0", pretrained=True)
    """
    from cnnlab.deploy.predictor import Predictor
    from cnnlab.interpret.report import explain_image

    if image is None:
        raise CnnlabError("image: explain needs an IMAGE file")
    image = _path(image, "image", "an image file (explain reads it from disk)")
    lm = checkpoint if isinstance(checkpoint, Predictor) else load(
        None if checkpoint is None else _path(checkpoint, "checkpoint"), model=model, pretrained=pretrained, device=device)
    if not lm.task.explainable:
        raise CnnlabError(f"{checkpoint}: explain opens up classifiers; this is a {lm.task.name} checkpoint "
                          f"(predict draws its results: `cnnlab predict {checkpoint} IMAGE`)")
    if not lm.explainable:
        raise CnnlabError(f"{checkpoint}: explain needs a PyTorch checkpoint (.pt), not an export")
    return explain_image(lm, image, out, method=method, layer=layer, target_class=target_class,
                         dataset=hierarchy)


def inspect(model: Predictor, image, *, layer: str | None = None, cam_layer: str | None = None,
            target_class: str | int | None = None, method: str = "gradcam", topk: int = 5) -> dict:
    """One image through a loaded classifier, step by step (what the web page's explainer draws):
    the input after resizing and normalisation, the top-k, a CAM at ``cam_layer`` for
    ``target_class``, and a conv ``layer``'s feature maps with its kernels
    (``cnnlab.interpret.report.inspect_image``). Same preprocessing as ``predict``."""
    from cnnlab.deploy.predictor import Predictor
    from cnnlab.interpret.report import inspect_image

    if not isinstance(model, Predictor) or not model.explainable:
        raise CnnlabError("inspect opens up PyTorch classifiers (a loaded .pt checkpoint or pretrained model)")
    return inspect_image(model, image, layer=layer, cam_layer=cam_layer, target_class=target_class,
                         method=method, topk=topk)


def xo(out: str | Path | None = None, epochs: int = 2, seed: int = 0, train: bool = True, log=None) -> dict:
    """The "X or X?" case study; with ``train``, also a small CNN trained on the built-in xo data.
    ``out``: its folder (created; its parent must exist), default ``runs/xo``; a rerun replaces it."""
    from cnnlab.interpret import train_xo_cnn, xo_case_study

    out = make_folder("runs/xo", parents=True) if out is None else make_folder(out, f"--out {out}")
    result = {"case_study": xo_case_study(out)}
    if train:
        result["cnn"] = train_xo_cnn(out, epochs=epochs, seed=seed, log=log)
    return result


def experiment(name: str, log=print, **options) -> dict:
    """Run one of the lecture's arguments as an experiment: ``fc-vs-cnn``, ``pooling`` or ``faces``.

    Options are the experiment's own (``data``, ``epochs``, ``seed``, ``out``...; see
    ``cnnlab.experiments``). Writes a table (JSON and Markdown) and a figure to ``out``
    (default ``runs/experiments/NAME``); returns ``{"rows", "files", "notes", ...}``.
    """
    from cnnlab.experiments import run_experiment

    return run_experiment(_name(name, "name", "fc-vs-cnn, pooling or faces"), log=log, **options)


def detect_faces(image: str | Path, checkpoint: str | Path | None = None, *, threshold: float = 0.9,
                 scales: list[float] | None = None, stride: int = 2, min_face: int | None = None,
                 max_face: int | None = None, out: str | Path | None = None) -> dict:
    """Faces in a photo: the face CNN of ``cnnlab experiment faces`` slid over an image pyramid, then NMS.

    ``scales``: shrink factors of the pyramid (a face of ``25 / s`` pixels fills a window);
    default: faces from a tenth of the shorter side (``min_face``) to all of it (``max_face``).
    Returns ``{"image", "faces": [{"box": [x1, y1, x2, y2], "score"}], "windows", "scales"}``
    (boxes in image pixels, best first) and ``"figure"`` when ``out`` is given.
    """
    from cnnlab.experiments.face_detector import plot_detections
    from cnnlab.experiments.faces import DEFAULT_OUT, DETECTOR, find_faces, load_detector

    if out:
        file_path(figure_path(out), f"--out {out}")
    from cnnlab.images import read_image

    img = read_image(_path(image, "image", "an image file"), channels=3)  # the user's input first: a bad image fails before the model loads
    lm = load_detector(checkpoint or DEFAULT_OUT / DETECTOR)
    found = find_faces(lm, img, threshold=threshold, scales=scales, stride=stride, min_face=min_face,
                       max_face=max_face)
    result = {"image": str(image), "faces": [{"box": [round(v, 1) for v in b], "score": round(s, 4)}
                                             for b, s in zip(found["boxes"].tolist(), found["scores"].tolist())],
              "windows": found["windows"], "scales": [round(s, 4) for s in found["scales"]]}
    if out:
        result["figure"] = plot_detections(img, found, out)
    return result
