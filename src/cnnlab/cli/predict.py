"""``cnnlab predict``: predictions for images, files, folders or globs; on the terminal, as JSON, or
streamed to ``--save DIR/predictions.jsonl``. Videos: ``cli/predict_video.py``."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from cnnlab.cli import predict_video
from cnnlab.cli.common import check_task, expand_images, json_text
from cnnlab.cli.options import FIGURES, PREDICT_OPTIONS, add_predict_options
from cnnlab.errors import CnnlabError


def add(sub) -> argparse.ArgumentParser:
    r = sub.add_parser("predict", help="predictions for images, files, folders or globs: classes, boxes, masks or captions")
    r.add_argument("checkpoint", nargs="?", help="a checkpoint (.pt), or an exported .safetensors or .onnx; or use --model NAME --pretrained")
    r.add_argument("images", nargs="*", metavar="IMAGE", help="image files, folders (recursively), globs, or - for stdin; or video files")
    r.add_argument("--model", help="a registered model name (with --pretrained)")
    r.add_argument("--pretrained", action="store_true", help="use the model's ImageNet weights (EfficientNet-Lite0: offline; torchvision models: the torch hub cache)")
    r.add_argument("--task", help="the checkpoint's task (checked; the checkpoint knows it)")
    add_predict_options(r)
    r.add_argument("--device", default="auto")
    r.add_argument("--json", action="store_true")
    r.add_argument("--save", metavar="DIR", help="write DIR/predictions.jsonl (a JSON line per image, streamed) "
                                                 "and the task's figures to DIR (created; its parent must exist)")
    r.add_argument("--exist-ok", action="store_true", help="with --save: replace the predictions.jsonl (and "
                   "figures of the same names) that DIR already holds; without it such a DIR is refused")
    r.add_argument("--video", action="store_true", help="each folder IMAGE is one video's frames, in name order "
                   "(video files, .mp4 .avi .mov .mkv .webm, need no flag): with --save, DIR/STEM_overlay.mp4 "
                   "(the prediction drawn on every frame) and DIR/STEM_frames.jsonl (a JSON line per frame)")
    r.add_argument("--fps", type=float, help="frames per second of a --video folder of frames (default 25)")
    return r


def run(a) -> int:
    from cnnlab import api

    if a.checkpoint and a.model:
        # `predict --model NAME --pretrained IMG`: argparse took IMG as the checkpoint
        a.images.insert(0, a.checkpoint)
        a.checkpoint = None
    lm = check_task(api.load(a.checkpoint, model=a.model, pretrained=a.pretrained, device=a.device), a.task)
    given = {name: getattr(a, name) for name in PREDICT_OPTIONS if getattr(a, name) is not None}
    if predict_video.wants_video(a):
        return predict_video.run(lm, a, given)
    if a.fps is not None:
        raise CnnlabError(f"--fps {a.fps}: for a --video folder of frames")
    draws = "out" in {f.name for f in dataclasses.fields(lm.task.Options)}
    if a.save and draws:
        given.setdefault("out", a.save)  # the figures go beside predictions.jsonl
    if not a.json and draws:
        given.setdefault("out", FIGURES)  # the terminal shows where the figures went; --json prints only
    images = expand_images(a.images, lm.task.name)
    if a.save:
        stream = api.predictions(lm, images, **given)  # options checked first, then the folder: before any work
        folder = _save_folder(Path(a.save), a.exist_ok)
        return _save_predictions(_stdin_named(stream, images), folder, a.exist_ok)
    results = _predicted(list(_stdin_named(api.predict(lm, images, **given), images)))
    if a.json:
        print(json_text(results))
        return 0
    for r in results:
        print(lm.task.format_prediction(r))
    return 0


def _save_folder(folder: Path, exist_ok: bool) -> Path:
    """``--save``'s folder, created (its parent must exist); one holding predictions.jsonl is
    refused unless ``--exist-ok``."""
    from cnnlab.files import make_folder

    make_folder(folder, f"--save {folder}")
    if os.path.lexists(folder / "predictions.jsonl") and not exist_ok:
        raise CnnlabError(f"--save {folder}: the folder holds predictions.jsonl; give --exist-ok to replace it, "
                          f"or another --save")
    return folder


def _save_predictions(stream, folder: Path, replace: bool = False) -> int:
    """``folder/predictions.jsonl``, a line per image written as its batch finishes (a new file,
    never through a link: ``files.open_new``), a progress bar on a terminal, unreadable images
    named on stderr and counted."""
    from tqdm.auto import tqdm

    from cnnlab.files import open_new

    path, done, bad = folder / "predictions.jsonl", 0, 0
    with open_new(path, replace=replace, name=f"--save {folder}: predictions.jsonl") as f, tqdm(unit="image", desc="predict", file=sys.stderr, leave=False,
                                    disable=not sys.stderr.isatty()) as bar:
        for r in stream:
            if "error" in r:
                bad += 1
                print(f"cnnlab: error: {r['error']}", file=sys.stderr)
            else:
                f.write(json_text(r, indent=None) + "\n")
                done += 1
            bar.update(1)
            if bar.n % 64 == 0:
                f.flush()
    if bad:
        print(f"cnnlab: skipped {bad} of {done + bad} images that could not be read", file=sys.stderr)
    if not done:
        raise CnnlabError(f"no image could be read ({bad} given)")
    print(f"wrote {done} predictions to {path}")
    return 0


def _stdin_named(results, images: list):
    """The results with the image read from stdin (``-``, a tensor by now) named ``<stdin>``."""
    for r, image in zip(results, images):
        yield r if isinstance(image, Path) else {**r, "image": "<stdin>"}


def _predicted(results: list[dict]) -> list[dict]:
    """The predictions that worked; each unreadable image named on stderr (the rest went on)."""
    bad = [r for r in results if "error" in r]
    for r in bad:
        print(f"cnnlab: error: {r['error']}", file=sys.stderr)
    if len(bad) == len(results):
        raise CnnlabError(f"no image could be read ({len(bad)} given)")
    if bad:
        print(f"cnnlab: skipped {len(bad)} of {len(results)} images that could not be read", file=sys.stderr)
    return [r for r in results if "error" not in r]
