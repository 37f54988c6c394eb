"""The command line: a thin layer over ``cnnlab.api``.

It names no task: a checkpoint's task renders its own results (``tasks.base.Task``). Commands
import ``cnnlab.api`` (and so torch) when they run, so ``--help`` answers at once.

Every error the user can cause prints one line (``cnnlab: error: ...``) and exits 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import textwrap
import typing
import warnings
from pathlib import Path

from cnnlab._version import __version__
from cnnlab.engine.config import CHOICES, TrainConfig, describe_field, field_docs, recipe_names
from cnnlab.errors import CnnlabError, clean
from cnnlab.tasks.options import TASK_OPTIONS, base_type

FIGURES = "predictions"  # where `predict` draws a task's figures unless --out says otherwise
PREDICT_OPTIONS = sorted({f.name for cls in TASK_OPTIONS.values() for f in dataclasses.fields(cls)})
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


# ---------------------------------------------------------------------- commands
def cmd_train(a) -> int:
    from cnnlab import api

    options = {f.name: getattr(a, f.name) for f in dataclasses.fields(TrainConfig)}
    log = None if a.quiet else (lambda *args: print(*args, file=sys.stderr)) if a.json else print  # stdout: JSON
    result = api.train(config=a.config, overrides=a.set, resume=a.resume, log=log, **options)
    if result.interrupted:
        return 130
    if os.environ.get("RANK", "0") != "0":  # under torchrun the run is reported once, by rank 0
        return 0
    task = result.task
    if a.json:
        print(json_text({"out": str(result.out), "best_val": result.best,
                         "test": task.metrics_json(result.test) if result.test else None,
                         "train_eval": result.train_eval, "skipped": result.skipped,
                         "seconds": round(result.seconds, 1), "plots": result.plots}))
        return 0
    if result.test:
        print(f"test {task.headline(result.test)}  ({result.test['count']} images)")
    if result.best:
        print(f"best val {task.score_label} {result.best['score']:.4f} at epoch {result.best['epoch']}; "
              f"{result.seconds:.1f} s")
    files = ["best.pt", "last.pt", "metrics.csv", "metrics.json"] + [Path(p).name for p in result.plots]
    print(f"run folder: {result.out}  ({', '.join(files)})")
    return 0


def cmd_eval(a) -> int:
    from cnnlab import api

    lm = _check_task(api.load(a.checkpoint, device=a.device), a.task)
    plots = None if a.no_plots else (a.plots or Path(a.checkpoint).parent / f"eval-{a.split}")
    m = api.evaluate(lm, data=a.data, split=a.split, device=a.device, tta=a.tta, plots=plots, images=a.images)
    if a.json:
        print(json_text(lm.task.metrics_json(m, full=a.full)))
        return 0
    print(lm.task.format_metrics(m))
    if m.get("plots"):
        print(f"plots: {', '.join(m['plots'])}")
    return 0


def cmd_predict(a) -> int:
    from cnnlab import api

    if a.checkpoint and a.model:
        # `predict --model NAME --pretrained IMG`: argparse took IMG as the checkpoint
        a.images.insert(0, a.checkpoint)
        a.checkpoint = None
    lm = _check_task(api.load(a.checkpoint, model=a.model, pretrained=a.pretrained, device=a.device), a.task)
    given = {name: getattr(a, name) for name in PREDICT_OPTIONS if getattr(a, name) is not None}
    draws = "out" in {f.name for f in dataclasses.fields(lm.task.Options)}
    if a.save and draws:
        given.setdefault("out", a.save)  # the figures go beside predictions.jsonl
    if not a.json and draws:
        given.setdefault("out", FIGURES)  # the terminal shows where the figures went; --json prints only
    images = _expand_images(a.images, lm.task.name)
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


def _expand_images(items: list[str], task: str) -> list:
    """Files as given; folders (recursively) and globs to their image files; ``-``: an image on stdin.

    A folder laid out as a detection, segmentation or captioning dataset is refused for a model of
    another task, and a segmentation dataset always (its masks are no photos): `eval` scores a dataset."""
    from cnnlab.data.layout import find_task

    images = []
    for item in items:
        path = Path(item)
        if item == "-":
            from cnnlab.images import read_image

            images.append(read_image(sys.stdin.buffer.read(), name="<stdin>"))
        elif path.is_dir():
            found = find_task(path)
            if found and found.task != "classify" and (found.task != task or found.task == "segment"):
                raise CnnlabError(f"{item}: a {found.task} dataset ({found.layout}); predict takes images: give "
                                  f"its image folder, or score the dataset with `cnnlab eval CHECKPOINT --data {item}`")
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise CnnlabError(f"{item}: a folder with no image files ({', '.join(IMAGE_SUFFIXES)})")
            images += found
        elif not path.exists() and any(ch in item for ch in "*?["):
            found = sorted(Path().glob(item)) if not path.is_absolute() else sorted(Path("/").glob(item[1:]))
            if not found:
                raise CnnlabError(f"{item}: no file matches this pattern")
            images += found
        else:
            images.append(path)
    return images


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


def _check_task(lm, task: str | None):
    """``lm``, after checking that its checkpoint was trained for ``--task`` (when given)."""
    if task and task != lm.task.name:
        raise CnnlabError(f"--task {task}: this checkpoint was trained for --task {lm.task.name}")
    return lm


def cmd_export(a) -> int:
    from cnnlab import api

    r = api.export(a.checkpoint, format=a.format, out=a.out, atol=a.atol, device=a.device)
    print(f"wrote {r['path']} ({r['format']})")
    if r["format"] == "safetensors":
        print(f"read back: {r['tensors']} tensors, max |difference| {r['max_abs_diff']:g}; "
              f"cnnlab predict {r['path']} IMAGE")
        return 0
    print(f"parity: max |logit difference| {r['max_abs_diff']:.2g} <= {r['atol']:g} "
          f"(PyTorch fp32 vs the export, batch sizes {', '.join(map(str, r['batch_sizes']))})")
    return 0


def cmd_serve(a) -> int:
    from cnnlab.serve import run  # FastAPI and uvicorn load only for this command
    from cnnlab.serve.uploads import Limits

    if a.model and not a.pretrained:
        raise CnnlabError("serve: --model NAME needs --pretrained (or give a CHECKPOINT)")
    limits = Limits(max_upload_bytes=round(a.max_upload_mb * 2**20), max_pixels=a.max_pixels)
    run(a.checkpoints, a.model or [], host=a.host, port=a.port, limits=limits, device=a.device,
        runtime=a.runtime)
    return 0


def cmd_models(a) -> int:
    from cnnlab import api

    from cnnlab.models import get_model, list_models, model_info

    if a.action == "summary":
        if not a.name:
            raise CnnlabError("models summary: give a model NAME (see `cnnlab models`)")
        print(api.model_summary(a.name, _shape(a.input) if a.input else None))
        return 0
    rows = []
    for name in list_models(a.name or "*"):
        info = model_info(name)
        with _meta_device():
            n = sum(p.numel() for p in get_model(name).parameters())
        rows.append((name, n, "x".join(map(str, info.input_size)), info.paper,
                     "yes" if info.pretrained else ""))
    if a.json:
        print(json_text([dict(zip(("name", "parameters", "input", "paper", "pretrained"), r)) for r in rows]))
        return 0
    print(f"{'model':<20}{'parameters':>13}  {'input':<10} {'pretrained':<10} paper")
    for name, n, size, paper, pre in rows:
        print(f"{name:<20}{n:>13,}  {size:<10} {pre:<10} {paper}")
    return 0


def cmd_data(a) -> int:
    from cnnlab import api

    from cnnlab.data import list_datasets

    if a.action == "list" or not a.spec:
        for name in list_datasets():
            print(name)
        return 0
    if a.action == "check":
        return _data_check(a)
    info = api.data_info(a.spec, a.split, grid=a.grid or f"{_stem(a.spec)}_{a.split}_grid.png",
                         skip_bad=a.skip_bad, task=a.task, images=a.images)
    if a.json:
        print(json_text(info))
        return 0
    c, h, w = info["image_shape"]
    print(f"{info['data']} / {info['split']}: {info['count']} images of {h}x{w}x{c} (H x W x C), "
          f"{len(info['classes'])} classes")
    shares = info.get("class_shares")  # segmentation: pixels per class
    for name, n in info["class_counts"].items():
        print(f"  {name:>16} {n}" + (f" pixels ({100 * shares[name]:.1f}%)" if shares else ""))
    if info.get("skipped"):
        print(f"skipped {info['skipped']} unreadable files")
    for line in info.get("report", []):  # detection: what the annotation checks changed
        print(line)
    print(f"sample grid: {info['grid']}")
    return 0


def _data_check(a) -> int:
    from cnnlab import api
    from cnnlab.data.check import report_lines

    report = api.check_data(a.spec, task=a.task, skip_bad=a.skip_bad, images=a.images)
    if a.json:
        print(json_text(report))
    else:
        print("\n".join(report_lines(report)))
    return {"clean": 0, "warnings": 1, "errors": 2}[report["status"]]


def cmd_pixels(a) -> int:
    from cnnlab import api

    crop = tuple(_ints(a.crop, 4, "--crop", "X,Y,W,H")) if a.crop else None
    grid, (h, w, c) = api.pixels(a.image, crop=crop, size=a.size)
    print(grid)
    print(f"{a.image}: {h} x {w} x {c} (H x W x C)")
    return 0


def cmd_convolve(a) -> int:
    from cnnlab import api

    if a.explain:
        print(api.explain_convolution(image=a.image if a.image and ";" in a.image else None,
                                      kernel=a.kernel[0] if a.kernel else None,
                                      stride=a.stride, padding=a.padding or 0))
        return 0
    if not a.image:
        raise CnnlabError("convolve: give an IMAGE (or --explain for the lecture's 5x5 walk-through)")
    r = api.convolve(a.image, a.kernel or ["edge"], stride=a.stride, padding=a.padding, out=a.out)
    h, w = r["input"].shape
    print(f"{a.image}: {h} x {w} input, stride {r['stride']}, padding {r['padding']}")
    for m in r["feature_maps"]:
        fm = m["feature_map"]
        print(f"  {m['kernel']:>16}: feature map {fm.shape[0]} x {fm.shape[1]}, values {fm.min():.2f} .. {fm.max():.2f}")
    print(f"figure: {r['figure']}")
    return 0


def cmd_explain(a) -> int:
    from cnnlab import api

    if a.checkpoint and a.model:  # `explain --model NAME --pretrained IMG`: argparse took IMG as the checkpoint
        a.checkpoint, a.image = None, a.checkpoint
    r = api.explain(a.checkpoint, a.image, a.out, model=a.model, pretrained=a.pretrained, method=a.method,
                    layer=a.layer, target_class=a.target_class, hierarchy=a.hierarchy, device=a.device)
    print(f"{a.image}:")
    for t in r["prediction"]:
        print(f"  {t['class'][:28]:>28} {t['prob']:.3f}")
    c = r["cam"]
    print(f"{c['method']} for class {c['class']!r} (p={c['prob']:.3f}) at layer {c['layer']}")
    for path in r["files"].values():
        print(f"wrote {path}")
    return 0


def cmd_xo(a) -> int:
    from cnnlab import api

    r = api.xo(a.out, epochs=a.epochs, seed=a.seed, train=not a.no_train)
    print(r["case_study"]["report"])
    print(f"figure: {r['case_study']['figure']}")
    if "cnn" in r:
        print()
        print(r["cnn"]["report"])
        print(f"figure: {r['cnn']['figure']}")
    return 0


def cmd_experiment(a) -> int:
    from cnnlab import api

    log = (lambda *args: print(*args, file=sys.stderr)) if a.json else print  # keep stdout pure JSON
    r = api.experiment(a.name, log=log, data=a.data, out=a.out, epochs=a.epochs, seed=a.seed,
                       train_size=a.train_size)
    if a.json:
        print(json_text({k: r[k] for k in ("name", "rows", "files", "notes")}, default=str))
        return 0
    print()
    print(r["files"]["table"])
    for note in r["notes"]:
        print(f"- {note}")
    print(f"wrote {r['files']['markdown']}, {r['files']['json']}, {r['files']['figure']}")
    return 0


def cmd_detect_faces(a) -> int:
    from cnnlab import api

    try:
        scales = [float(v) for v in a.scales.split(",")] if a.scales else None
    except ValueError:
        raise CnnlabError(f"--scales {a.scales!r}: expected shrink factors such as 0.25,0.2,0.16") from None
    r = api.detect_faces(a.image, a.checkpoint, threshold=a.threshold, scales=scales, stride=a.stride,
                         min_face=a.min_face, max_face=a.max_face, out=a.out)
    if a.json:
        print(json_text(r))
        return 0
    print(f"{a.image}: {len(r['faces'])} faces ({r['windows']:,} windows over {len(r['scales'])} scales)")
    for f in r["faces"]:
        x1, y1, x2, y2 = f["box"]
        print(f"  score {f['score']:.3f}  box x {x1:.0f}..{x2:.0f}, y {y1:.0f}..{y2:.0f}")
    if r.get("figure"):
        print(f"figure: {r['figure']}")
    return 0


def cmd_recipes(a) -> int:
    from cnnlab.engine.config import recipe_info

    rows = [recipe_info(name) for name in recipe_names()]
    if a.json:
        print(json_text(rows))
        return 0
    print(f"{'recipe':<16}{'task':<10}{'model':<18}data")
    for r in rows:
        print(f"{r['name']:<16}{r['task']:<10}{r['model']:<18}{r['data']}")
        print(textwrap.fill(r["about"], 100, initial_indent="    ", subsequent_indent="    "))
    if rows:
        folder = Path(rows[0]["path"]).parent
        shown = os.path.relpath(folder) if folder.is_relative_to(Path.cwd()) else str(folder)
        print(f"train one: cnnlab train --config NAME   (the files are in {shown})")
    return 0


def cmd_samples(a) -> int:
    from cnnlab.data.samples import write_samples

    r = write_samples(a.out, a.names, log=print)
    if not r["written"]:
        raise CnnlabError("no sample could be written here")
    return 0


def cmd_cache(a) -> int:
    from cnnlab.data.cache import cache_contents, clear_cache
    from cnnlab.data.folder import cache_root
    from cnnlab.memory import gb

    if a.action == "clear":
        count, size = clear_cache()
        print(f"deleted {count} files ({gb(size)}) from {cache_root()}")
        return 0
    entries = cache_contents()
    print(f"{cache_root()}  (set CNNLAB_CACHE to move it)")
    for e in entries:
        print(f"  {gb(e.bytes):>9}  {len(e.files):>6} files  {e.what}  ({e.folder})")
    print(f"  {gb(sum(e.bytes for e in entries)):>9}  in all; `cnnlab cache clear` deletes all but the downloads")
    return 0


def cmd_completion(a) -> int:
    extra = {**CHOICES, "config:files": recipe_names()}  # config choices are checked by the config
    from cnnlab.completion import bash_script, zsh_script

    print((bash_script if a.shell == "bash" else zsh_script)(build_parser(), extra), end="")
    return 0


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cnnlab", description="Convolutional neural networks for computer "
                                "vision: see, train, evaluate and explain CNNs.")
    p.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    p.add_argument("--debug", action="store_true", default=bool(os.environ.get("CNNLAB_DEBUG")),
                   help="show the full traceback of an internal error (also CNNLAB_DEBUG=1)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a model (classification by default)",
                       description="Train a model. Each option is a config key (a recipe's YAML key, "
                       "--set KEY=VALUE); values: defaults < --config < --set < options.",
                       epilog="example: cnnlab train --config fashion-mnist --epochs 4 --out runs/fm")
    t.add_argument("--config", metavar="RECIPE|FILE", help="a packaged recipe's name (`cnnlab recipes`: "
                   "fashion-mnist, cifar10, ...) or a YAML file of config keys; options given here override it")
    t.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config keys")
    t.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its last.pt")
    t.add_argument("--json", action="store_true", help="print the result as JSON")
    t.add_argument("--quiet", "-q", action="store_true", help="no progress lines: only the result")
    _add_config_options(t)
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint: top-1/top-5, per-class, confusion matrix")
    e.add_argument("checkpoint")
    e.add_argument("--data", help="dataset name or path (default: the training data)")
    e.add_argument("--images", metavar="DIR", help="the folder of the images a COCO-style --data file names "
                   "(default: the training run's, for its own data)")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--device", default="auto")
    e.add_argument("--json", action="store_true")
    e.add_argument("--full", action="store_true", help="with --json: include per-class and confusion matrix")
    e.add_argument("--task", help="the checkpoint's task (checked; the checkpoint knows it)")
    e.add_argument("--tta", type=int, default=0, choices=[0, 1, 2],
                   help="classify: test-time augmentation: 1 averages each image with its mirror image, "
                   "2 also with 1-pixel shifts (airbench; 6 forward passes); only views the model trained "
                   "with (flip, translate) are used")
    e.add_argument("--plots", metavar="DIR", help="folder for the task's evaluation figures "
                   "(default: eval-SPLIT beside the checkpoint)")
    e.add_argument("--no-plots", action="store_true", help="write no figures")
    e.set_defaults(fn=cmd_eval)

    r = sub.add_parser("predict", help="predictions for images, files, folders or globs: classes, boxes, masks or captions")
    r.add_argument("checkpoint", nargs="?", help="a checkpoint (.pt), or an exported .safetensors or .onnx; or use --model NAME --pretrained")
    r.add_argument("images", nargs="*", metavar="IMAGE", help="image files, folders (recursively), globs, or - for stdin")
    r.add_argument("--model", help="a registered model name (with --pretrained)")
    r.add_argument("--pretrained", action="store_true", help="use the model's ImageNet weights (EfficientNet-Lite0: offline; torchvision models: the torch hub cache)")
    r.add_argument("--task", help="the checkpoint's task (checked; the checkpoint knows it)")
    _add_predict_options(r)
    r.add_argument("--device", default="auto")
    r.add_argument("--json", action="store_true")
    r.add_argument("--save", metavar="DIR", help="write DIR/predictions.jsonl (a JSON line per image, streamed) "
                                                 "and the task's figures to DIR (created; its parent must exist)")
    r.add_argument("--exist-ok", action="store_true", help="with --save: replace the predictions.jsonl (and "
                   "figures of the same names) that DIR already holds; without it such a DIR is refused")
    r.set_defaults(fn=cmd_predict)

    x = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript (with a parity check), "
                                      "or its weights to safetensors")
    x.add_argument("checkpoint")
    x.add_argument("--format", default="onnx", choices=["onnx", "torchscript", "safetensors"],
                   help="safetensors: weights only, config and task as metadata (every task)")
    x.add_argument("--out", help="output file (default: beside the checkpoint)")
    x.add_argument("--atol", type=float, default=1e-4, help="largest logit difference accepted")
    x.add_argument("--device", default="auto")
    x.set_defaults(fn=cmd_export)

    s = sub.add_parser("serve", help="an HTTP service and web page for checkpoints: predict, explain, convolve")
    s.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT",
                   help="a checkpoint (.pt) or exported .safetensors or .onnx, optionally NAME=PATH; several serve side by side")
    s.add_argument("--model", action="append", help="a registered model name to serve with --pretrained; repeat")
    s.add_argument("--pretrained", action="store_true", help="use the --model's ImageNet weights (EfficientNet-Lite0: offline; torchvision models: the torch hub cache)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--max-upload-mb", type=float, default=20, help="largest request body in MiB (413 above)")
    s.add_argument("--max-pixels", type=int, default=40_000_000, help="largest decoded image, width*height (413 above)")
    s.add_argument("--runtime", default="pytorch", choices=["pytorch", "onnxruntime"],
                   help="predict with PyTorch fp32, or export classifiers to ONNX at start (parity-checked) "
                        "and predict with onnxruntime (faster on CPUs; explain still uses PyTorch)")
    s.add_argument("--device", default="auto")
    s.set_defaults(fn=cmd_serve)

    m = sub.add_parser("models", help="list models; `models summary NAME` for layer volumes and receptive fields")
    m.add_argument("action", nargs="?", choices=["list", "summary"], default="list")
    m.add_argument("name", nargs="?", help="model name (summary) or a pattern such as 'resnet*' (list)")
    m.add_argument("--input", help="input volume CxHxW, e.g. 3x224x224 (summary)")
    m.add_argument("--json", action="store_true")
    m.set_defaults(fn=cmd_models)

    d = sub.add_parser("data", help="`data info NAME|PATH`: counts, classes, image size, a sample grid PNG; "
                       "`data check NAME|PATH`: every split read as training reads it, problems listed "
                       "(exit 0 clean, 1 warnings, 2 errors)")
    d.add_argument("action", nargs="?", choices=["info", "check", "list"], default="list")
    d.add_argument("spec", nargs="?", metavar="NAME|PATH")
    d.add_argument("--split", default="train", choices=["train", "val", "test"])
    d.add_argument("--grid", help="where to write the sample grid PNG")
    d.add_argument("--skip-bad", action="store_true", help="skip unreadable image files and count them")
    d.add_argument("--images", metavar="DIR", help="the folder of the images a COCO-style annotation file names")
    d.add_argument("--task", default="auto", help="the task whose variant of the data to show (auto: read from "
                   "the data's layout; segment, detect, caption for the built-in shapes scenes)")
    d.add_argument("--json", action="store_true")
    d.set_defaults(fn=cmd_data)

    x = sub.add_parser("pixels", help="print an image as the matrix of numbers a computer sees")
    x.add_argument("image")
    x.add_argument("--crop", metavar="X,Y,W,H", help="a crop box in pixels")
    x.add_argument("--size", type=int, help="resize so the longer side is N pixels")
    x.set_defaults(fn=cmd_pixels)

    c = sub.add_parser("convolve", help="slide hand-made kernels over an image; --explain walks through it")
    c.add_argument("image", nargs="?", help="an image file (with --explain: a matrix 'a,b;c,d')")
    c.add_argument("--kernel", action="append", metavar="NAME|MATRIX",
                   help="a kernel name (sharpen, edge, strong-edge, sobel-x, x-crossing, ...) or 'a,b,c;d,e,f;g,h,i'; repeat for more")
    c.add_argument("--stride", type=int, default=1)
    c.add_argument("--padding", type=int, help="zero padding (default: same size for images, 0 with --explain)")
    c.add_argument("--out", default="feature_maps.png", help="the figure to write")
    c.add_argument("--explain", action="store_true", help="print the lecture's step-by-step computation")
    c.set_defaults(fn=cmd_convolve)

    ex = sub.add_parser("explain", help="feature maps, filters, Grad-CAM and the feature hierarchy of a model")
    ex.add_argument("checkpoint", nargs="?", help="a checkpoint (.pt); or use --model NAME --pretrained")
    ex.add_argument("image", nargs="?", metavar="IMAGE")
    ex.add_argument("--model", help="a registered model name (with --pretrained)")
    ex.add_argument("--pretrained", action="store_true")
    ex.add_argument("--method", default="gradcam", choices=["gradcam", "gradcam++", "saliency"])
    ex.add_argument("--layer", help="the layer for the class activation map (default: the last conv layer)")
    ex.add_argument("--class", dest="target_class", help="explain this class (default: the predicted one)")
    ex.add_argument("--hierarchy", metavar="DATA", help="a dataset whose patches most excite early/middle/late layers")
    ex.add_argument("--out", default="explain", help="folder for the figures")
    ex.add_argument("--device", default="auto")
    ex.set_defaults(fn=cmd_explain)

    o = sub.add_parser("xo", help='the lecture\'s "X or X?" case study, then a CNN trained on X versus O')
    o.add_argument("--out", help="the folder for its figures and run (default runs/xo)")
    o.add_argument("--epochs", type=int, default=2)
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--no-train", action="store_true", help="only the hand-made filters, no training")
    o.set_defaults(fn=cmd_xo)

    xp = sub.add_parser("experiment", help="the lecture's arguments measured: fc-vs-cnn, pooling, faces "
                        "(a table and a figure)")
    xp.add_argument("name", choices=["fc-vs-cnn", "pooling", "faces"])
    xp.add_argument("--data", help="dataset name or path (fc-vs-cnn, pooling; default digits)")
    xp.add_argument("--out", help="folder for the table and figure (default runs/experiments/NAME)")
    xp.add_argument("--epochs", type=int, help="training epochs of every model (default: the experiment's)")
    xp.add_argument("--train-size", type=int, help="cap on training images (fc-vs-cnn, pooling; default 12000)")
    xp.add_argument("--seed", type=int, help="seeds weights, sampling, splits and the permutation (default 0)")
    xp.add_argument("--json", action="store_true", help="print the rows and files as JSON")
    xp.set_defaults(fn=cmd_experiment)

    df = sub.add_parser("detect-faces", help="find faces in a photo: the faces experiment's CNN slid over "
                        "an image pyramid, then non-maximum suppression")
    df.add_argument("image")
    df.add_argument("--checkpoint", help="a face / non-face model (default: the one `cnnlab experiment faces` "
                    "wrote to runs/experiments/faces/runs/detector/last.pt)")
    df.add_argument("--threshold", type=float, default=0.9, help="lowest face probability kept (default 0.9)")
    df.add_argument("--scales", metavar="S,S,...", help="pyramid shrink factors; a face of 25/S px fills a "
                    "window (default: faces from a tenth of the shorter side to all of it)")
    df.add_argument("--min-face", type=int, help="smallest face side in pixels for the default pyramid")
    df.add_argument("--max-face", type=int, help="largest face side in pixels for the default pyramid")
    df.add_argument("--stride", type=int, default=2, help="window step in pyramid pixels (default 2)")
    df.add_argument("--out", help="write a figure of the detections and the face-score heat map here")
    df.add_argument("--json", action="store_true", help="print the boxes and scores as JSON")
    df.set_defaults(fn=cmd_detect_faces)

    rc = sub.add_parser("recipes", help="the training recipes that ship with cnnlab (`train --config NAME`)")
    rc.add_argument("--json", action="store_true", help="print the recipes as JSON")
    rc.set_defaults(fn=cmd_recipes)

    sm = sub.add_parser("samples", help="write the sample images the README's commands use (a digit, "
                        "shapes scenes, a road scene, the cat, the espresso)")
    sm.add_argument("names", nargs="*", metavar="FILE", help="only these samples (default: all)")
    sm.add_argument("--out", default=".", metavar="DIR", help="the folder to write them to (default: here)")
    sm.set_defaults(fn=cmd_samples)

    ca = sub.add_parser("cache", help="list cnnlab's cache folder (decoded datasets, traces) with sizes; "
                        "`cache clear` empties it")
    ca.add_argument("action", nargs="?", choices=["list", "clear"], default="list")
    ca.set_defaults(fn=cmd_cache)

    cp = sub.add_parser("completion", help="print a shell completion script: "
                        "`source <(cnnlab completion bash)` (or zsh)")
    cp.add_argument("shell", choices=["bash", "zsh"])
    cp.set_defaults(fn=cmd_completion)
    return p


def _add_predict_options(parser: argparse.ArgumentParser) -> None:
    """One --option per field of the tasks' predict options (tasks/options.py), default None so
    that only given options reach the task, which checks them against its own."""
    fields: dict[str, list] = {}  # name -> [(task, field, type)]
    for task, cls in TASK_OPTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            fields.setdefault(f.name, []).append((task, f, base_type(hints[f.name])))
    for name, takers in fields.items():
        flag, typ, default = "--" + name.replace("_", "-"), takers[0][2], takers[0][1].default
        default = f"{FIGURES}/, none with --json" if name == "out" else default
        helps = {f.metadata["help"] for _, f, _ in takers}
        text = (f"{', '.join(t for t, _, _ in takers)}: {helps.pop()}" if len(helps) == 1
                else "; ".join(f"{t}: {f.metadata['help']}" for t, f, _ in takers)) + f" (default {default})"
        if typ is bool:
            parser.add_argument(flag, dest=name, action="store_const", const=True, default=None, help=text)
        else:
            parser.add_argument(flag, dest=name, type=typ, default=None, help=text, metavar=name.upper())


GROUP_ORDER = ("data", "model", "optimisation", "augmentation", "device", "output")  # train --help


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One --option per TrainConfig field, default None so that only given options override; help,
    groups, choices and ranges from the config (its field comments, CHOICES, RANGES)."""
    hints = typing.get_type_hints(TrainConfig)
    docs = field_docs()
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name in sorted({d.group for d in docs.values()}, key=lambda g: (g not in GROUP_ORDER, GROUP_ORDER.index(g)
                                                                        if g in GROUP_ORDER else 0, g)):
        title = next(d.group_title for d in docs.values() if d.group == name)
        groups[name] = parser.add_argument_group(f"{name} ({title})" if title else name)
    for f in dataclasses.fields(TrainConfig):
        group = groups[docs[f.name].group]
        flag = "--" + f.name.replace("_", "-")
        typ = hints[f.name]
        text = describe_field(f.name).replace("%", "%%")
        if typ is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            # lists arrive as text ("[0.2, 0.23, 0.07]") for the config to parse as YAML; choices are
            # checked by the config (one error path for flags, --set and recipes)
            metavar = ("{" + ",".join(CHOICES[f.name]) + "}" if f.name in CHOICES
                       else "YAML" if typ in (dict, list) else f.name.upper())
            group.add_argument(flag, dest=f.name, type=typ if typ in (int, float, str) else str, default=None,
                               metavar=metavar, help=text)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a, extra = parser.parse_known_args(argv)
    if extra and getattr(a, "fn", None) is cmd_predict and not any(x.startswith("-") for x in extra):
        a.images += extra  # `predict CKPT --task detect IMG`: images after options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(a, "fn", None):
        parser.print_help()
        return 0
    warnings.showwarning = _show_warning
    try:
        code = a.fn(a)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except CnnlabError as e:
        return _fail(clean(e))
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cnnlab models | head -1`: the reader left; end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a process ended by SIGPIPE
    except OSError as e:  # a file or folder the user named: unwritable, full disk, a directory...
        if a.debug:
            raise
        return _fail(clean(f"{e.filename}: {e.strerror}" if e.filename else e))
    except MemoryError:
        return _fail("out of memory: use smaller images, a smaller --batch-size or fewer inputs")
    except Exception as e:  # a bug in cnnlab: one line, the trace in a file
        if a.debug:
            raise
        trace = _write_trace()
        print(f"cnnlab: internal error: {clean(f'{type(e).__name__}: {e}')[:300]}\n"
              f"  the full trace is in {trace}; `cnnlab --debug ...` shows it (please report it)", file=sys.stderr)
        return 1


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr (``cnnlab: warning: ...``), not Python's two with a source line."""
    print(f"cnnlab: warning: {clean(message)}", file=sys.stderr)


def _fail(message: str) -> int:
    """One line on stderr, exit code 2: the user's input was wrong."""
    print(f"cnnlab: error: {message}", file=sys.stderr)
    return 2


def _write_trace() -> str:
    """The current exception's traceback in a file (the cache folder); its path."""
    import tempfile
    import time
    import traceback

    from cnnlab.files import write_text

    folder = Path(os.environ.get("CNNLAB_CACHE") or Path.home() / ".cache" / "cnnlab")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(tempfile.gettempdir())
    path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    write_text(path, traceback.format_exc())
    return str(path)


# ---------------------------------------------------------------------- helpers
def json_text(value, indent: int | None = 2, **options) -> str:
    """JSON for every --json output and predictions.jsonl: NaN and infinities, which JSON does
    not have, become null (``allow_nan=False`` makes any that slip through an error, never bad JSON)."""
    return json.dumps(_finite(value), indent=indent, allow_nan=False, **options)


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _ints(text: str, n: int, option: str, form: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        values = []
    if len(values) != n:
        raise CnnlabError(f"{option} {text!r}: expected {form} ({n} integers)")
    return values


def _shape(text: str) -> tuple[int, int, int]:
    return tuple(_ints(text, 3, "--input", "CxHxW, e.g. 3x224x224"))


def _stem(spec: str) -> str:
    return Path(spec.rpartition(":")[2] or spec).name or "data"  # coco:FILE, camvid:DIR: the file or folder


def _meta_device():
    import torch

    return torch.device("meta")
