"""The bad-input matrix: every command x every kind of bad input a user can hand it.

Each case asserts what the README promises: exit code 2, one ``cnnlab: error:`` line that names
the offending input, no traceback, and no hang (a per-case alarm).
"""
from __future__ import annotations

import io
import os
import re
import signal
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnnlab
from cnnlab.cli import main

CASE_SECONDS = 60


# ---------------------------------------------------------------------- the corpus
def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and whose data is one empty chunk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def _encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, fmt)
    return buffer.getvalue()


def build_bad_images(folder: Path) -> dict[str, Path]:
    """Files that look like images to a user and are not readable ones; name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "zero-byte": (folder / "empty.jpg", b""),
        "truncated PNG": (folder / "cut.png", _encoded("PNG")[:200]),
        "truncated JPEG": (folder / "cut.jpg", _encoded("JPEG")[:300]),
        "text named .jpg": (folder / "notes.jpg", b"these are my holiday notes, not a photo\n"),
        "random bytes": (folder / "noise.png", np.random.default_rng(1).bytes(4096)),
        "100000x100000 header": (folder / "huge.png", _png_header(100_000, 100_000)),
    }
    cases = {}
    for name, (path, data) in files.items():
        path.write_bytes(data)
        cases[name] = path
    (folder / "folder.png").mkdir()
    cases["a directory named x.png"] = folder / "folder.png"
    os.mkfifo(folder / "fifo.png")
    cases["a FIFO"] = folder / "fifo.png"
    (folder / "loop.png").symlink_to(folder / "loop.png")
    cases["a symlink loop"] = folder / "loop.png"
    odd = os.fsdecode(bytes(folder) + b"/caf\xe9-\xff.png")  # not UTF-8: a Latin-1 name from an old camera
    Path(odd).write_bytes(b"not an image either")
    cases["a non-UTF-8 file name"] = Path(odd)
    cases["missing"] = folder / "no-such-photo.png"
    return cases


def build_bad_checkpoints(folder: Path, good: Path) -> dict[str, Path]:
    """Files given where a checkpoint belongs; name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    files = {"truncated checkpoint": (folder / "cut.pt", data[: len(data) // 3]),
             "random file named .pt": (folder / "noise.pt", np.random.default_rng(2).bytes(2048)),
             "zero-byte .pt": (folder / "empty.pt", b""),
             "a YAML file named .pt": (folder / "recipe.pt", b"epochs: 3\n")}
    cases = {}
    for name, (path, content) in files.items():
        path.write_bytes(content)
        cases[name] = path
    (folder / "dir.pt").mkdir()
    cases["a directory named .pt"] = folder / "dir.pt"
    cases["missing checkpoint"] = folder / "gone.pt"
    return cases


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    good = root / "run"
    cnnlab.train(data="digits", epochs=1, batch_size=64, plots=False, workers=0, out=str(good), log=lambda *a: None)
    segment = _segment_checkpoint(root)
    image = root / "digit.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    return {"good": good / "best.pt", "segment": segment, "image": image,
            "images": build_bad_images(root / "images"),
            "checkpoints": build_bad_checkpoints(root / "checkpoints", good / "best.pt")}


def _segment_checkpoint(root: Path) -> Path:
    """A real (one epoch) segmentation checkpoint: 'a checkpoint of another task'."""
    data = root / "roads"
    for sub in ("images", "masks"):
        (data / sub).mkdir(parents=True)
    for i in range(8):
        mask = np.zeros((16, 16), np.uint8)
        mask[:, 8:] = 1
        Image.fromarray(np.stack([mask * 200] * 3, -1)).save(data / "images" / f"r{i}.png")
        Image.fromarray(mask).save(data / "masks" / f"r{i}.png")
    (data / "classes.txt").write_text("road\nsky\n")
    cnnlab.train(task="segment", data=str(data), model="unet", model_args={"widths": [4, 8]}, epochs=1,
                 batch_size=4, val_fraction=0.25, plots=False, workers=0, out=str(root / "seg"), log=lambda *a: None)
    return root / "seg" / "best.pt"


# ---------------------------------------------------------------------- running one case
def run_cli(args: list, capsys) -> tuple[int, str]:
    def too_slow(*_):
        raise TimeoutError(f"no answer within {CASE_SECONDS} s: {args}")

    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(CASE_SECONDS)
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse's own refusals (an invalid choice, a missing value)
        code = e.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, capsys.readouterr().err


@pytest.fixture(autouse=True)
def _scratch(tmp_path, monkeypatch):
    """Figures the commands would write land in a scratch folder, never the repository."""
    monkeypatch.chdir(tmp_path)


def assert_refused(code: int, err: str, names: list[str]) -> None:
    assert "Traceback" not in err, err
    assert code == 2, err
    lines = [line for line in err.splitlines() if re.match(r"cnnlab( [\w-]+)?: error:", line)]
    assert lines, err
    text = " ".join(lines)
    assert any(n in text for n in names), f"none of {names} named in: {text}"
    assert "\x1b" not in err


def _shown(path: Path) -> list[str]:
    """How a message may name ``path``: its name as printed (undecodable bytes as \\xNN)."""
    name = path.name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return [name]


# ---------------------------------------------------------------------- images x commands
IMAGE_COMMANDS = {
    "pixels": lambda c, img: ["pixels", img],
    "convolve": lambda c, img: ["convolve", img, "--out", "fm.png"],
    "predict": lambda c, img: ["predict", c["good"], img],
    "explain": lambda c, img: ["explain", c["good"], img, "--out", "explain"],
    "detect-faces": lambda c, img: ["detect-faces", img],
    "data info": lambda c, img: ["data", "info", img],
}
IMAGE_CASES = ["zero-byte", "truncated PNG", "truncated JPEG", "text named .jpg", "random bytes",
               "100000x100000 header", "a directory named x.png", "a FIFO", "a symlink loop",
               "a non-UTF-8 file name", "missing"]


@pytest.mark.parametrize("case", IMAGE_CASES)
@pytest.mark.parametrize("command", IMAGE_COMMANDS)
def test_bad_images(corpus, capsys, command, case):
    path = corpus["images"][case]
    code, err = run_cli(IMAGE_COMMANDS[command](corpus, path), capsys)
    assert_refused(code, err, _shown(path))


# ---------------------------------------------------------------------- checkpoints x commands
CHECKPOINT_COMMANDS = {
    "eval": lambda c, ckpt: ["eval", ckpt],
    "predict": lambda c, ckpt: ["predict", ckpt, c["image"]],
    "explain": lambda c, ckpt: ["explain", ckpt, c["image"], "--out", "explain"],
    "export": lambda c, ckpt: ["export", ckpt, "--out", "m.onnx"],
    "train --resume": lambda c, ckpt: ["train", "--resume", ckpt],
    "detect-faces": lambda c, ckpt: ["detect-faces", c["image"], "--checkpoint", ckpt],
}
CHECKPOINT_CASES = ["truncated checkpoint", "random file named .pt", "zero-byte .pt", "a YAML file named .pt",
                    "a directory named .pt", "missing checkpoint"]


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
@pytest.mark.parametrize("command", CHECKPOINT_COMMANDS)
def test_bad_checkpoints(corpus, capsys, command, case):
    path = corpus["checkpoints"][case]
    code, err = run_cli(CHECKPOINT_COMMANDS[command](corpus, path), capsys)
    assert_refused(code, err, _shown(path))


@pytest.mark.parametrize("args, named", [
    (["eval", "{segment}", "--task", "classify"], "--task classify"),
    (["predict", "{segment}", "--task", "detect", "{image}"], "--task detect"),
    (["export", "{segment}", "--out", "m.onnx"], "segment checkpoint cannot be exported"),
    (["explain", "{segment}", "{image}", "--out", "explain"], "segment"),
    (["detect-faces", "{image}", "--checkpoint", "{segment}"], "best.pt"),
    (["eval", "{good}", "--data", "xo"], "--data xo"),
    (["train", "--resume", "{good}", "--data", "xo"], "--data xo"),
])
def test_a_checkpoint_of_another_task_or_data(corpus, capsys, args, named):
    code, err = run_cli([a.format(**{k: corpus[k] for k in ("good", "segment", "image")}) for a in args], capsys)
    assert_refused(code, err, [named])


# ---------------------------------------------------------------------- names and options
@pytest.mark.parametrize("args, named", [
    (["models", "summary", "nosuch"], "nosuch"),
    (["models", "summary", "lenet5", "--input", "1x-3x9"], "--input"),
    (["train", "--model", "nosuch"], "nosuch"),
    (["train", "--data", "nosuch"], "nosuch"),
    (["train", "--task", "nosuch"], "nosuch"),
    (["train", "--set", "model_args={{widthz: [4]}}"], "widthz"),
    (["train", "--epochs", "0"], "epochs"),
    (["train", "--batch-size", "-4"], "batch_size"),
    (["train", "--lr", "-1"], "lr"),
    (["train", "--label-smoothing", "5"], "label_smoothing"),
    (["train", "--seed", "123456789012345678901"], "seed"),
    (["train", "--set", "epochs=three"], "epochs"),
    (["train", "--optimizer", "adamm"], "adamm"),
    (["train", "--device", "mps"], "--device mps"),
    (["train", "--device", "tpu"], "--device 'tpu'"),
    (["data", "info", "nosuch"], "nosuch"),
    (["convolve", "{image}", "--kernel", "nosuch"], "nosuch"),
    (["convolve", "{image}", "--out", "fm.xyz"], "fm.xyz"),
    (["convolve", "{image}", "--stride", "0"], "stride"),
    (["pixels", "{image}", "--size", "100000"], "--size"),
    (["pixels", "{image}", "--crop", "1,2,3"], "--crop"),
    (["predict", "{good}", "{image}", "--topk", "-3"], "--topk"),
    (["predict", "--model", "nosuch", "--pretrained", "{image}"], "nosuch"),
    (["explain", "{good}", "{image}", "--method", "nosuch"], "nosuch"),
    (["explain", "{good}", "{image}", "--layer", "nosuch"], "nosuch"),
    (["explain", "{good}", "{image}", "--class", "nosuch"], "nosuch"),
    (["export", "{good}", "--out", "{folder}"], "--out"),
    (["experiment", "fc-vs-cnn", "--data", "nosuch"], "nosuch"),
    (["experiment", "pooling", "--epochs", "0"], "epochs"),
    (["detect-faces", "{image}", "--scales", "a,b"], "--scales"),
    (["detect-faces", "{image}", "--out", "faces.xyz"], "faces.xyz"),
    (["train", "--data", "digits", "--images", "{folder}"], "--images"),
    (["train", "--task", "detect", "--data", "shapes", "--images", "{folder}"], "--images"),
    (["train", "--task", "detect", "--data", "coco:{folder}/none.json"], "none.json"),
    (["eval", "{good}", "--images", "{folder}/nowhere"], "--images"),
    (["data", "info", "digits", "--images", "{folder}"], "--images"),
])
def test_bad_names_and_options(corpus, capsys, tmp_path, args, named):
    fill = {"good": corpus["good"], "image": corpus["image"], "folder": tmp_path}
    code, err = run_cli([a.format(**fill) for a in args] + (["--out", tmp_path / "run"] if args[0] == "train"
                                                             and "--out" not in args else []), capsys)
    assert_refused(code, err, [named])


# ---------------------------------------------------------------------- config files
@pytest.mark.parametrize("content, named", [
    (b"epochs: [3\n", "recipe.yaml"),                                 # malformed YAML
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", "recipe.yaml"),              # a binary file
    (b"a: &a [*a, *a, *a]\nb: &b [*a, *a, *a]\n", "recipe.yaml"),     # recursive anchors
    (b"epochs: !!python/object/apply:os.system ['true']\n", "recipe.yaml"),  # a Python tag
    (b"- a list\n- not a mapping\n", "recipe.yaml"),
    (b"epochz: 3\n", "epochz"),
    (b"batch_size: 0\n", "batch_size"),
])
def test_bad_config_files(tmp_path, capsys, content, named):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(content)
    code, err = run_cli(["train", "--config", recipe, "--out", tmp_path / "run"], capsys)
    assert_refused(code, err, [named])


# ---------------------------------------------------------------------- dataset files from other tools
@pytest.mark.parametrize("name, content, named", [
    ("my.yaml", "train: images/train\n", "my.yaml"),                      # Ultralytics YAML without names
    ("my.yaml", "names: [cat]\n", "my.yaml"),                             # ... without train
    ("my.yaml", "train: images/gone\nnames: [cat]\n", "images/gone"),     # a split folder that is not there
    ("my.yaml", "train: [unclosed\n", "my.yaml"),                         # not YAML
    ("instances.json", '{"images": []}', "instances.json"),                # COCO without annotations
    ("instances.json", "[1, 2]", "instances.json"),                        # not a COCO object
])
def test_bad_detection_dataset_files(tmp_path, capsys, name, content, named):
    (tmp_path / name).write_text(content)
    for args in (["train", "--task", "detect", "--data", tmp_path / name, "--out", tmp_path / "run"],
                 ["data", "info", tmp_path / name, "--task", "detect"]):
        code, err = run_cli(args, capsys)
        assert_refused(code, err, [named])


def test_a_directory_as_config(tmp_path, capsys):
    code, err = run_cli(["train", "--config", tmp_path, "--out", tmp_path / "run"], capsys)
    assert_refused(code, err, [tmp_path.name])


# ---------------------------------------------------------------------- output places
@pytest.mark.parametrize("make_out", ["file in the way", "unwritable"])
def test_bad_out_folders(tmp_path, capsys, make_out):
    if make_out == "file in the way":
        out = tmp_path / "taken"
        out.write_text("x")
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into any folder: an unwritable folder cannot be made here")
        out = tmp_path / "locked" / "run"
        out.parent.mkdir(mode=0o500)
    code, err = run_cli(["train", "--data", "digits", "--epochs", "1", "--out", out], capsys)
    assert_refused(code, err, [str(out)])
