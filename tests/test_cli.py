"""The command line as a user meets it: help, listings, one-line errors, train -> eval -> predict.

Commands run in this process through ``cnnlab.cli.main`` (as the console script does); the exit
code and stream handling of the interpreter itself (``python -m cnnlab``) run in a subprocess."""
import contextlib
import io
import json
import re
import subprocess
import sys

import pytest

from cnnlab.cli import main

COMMANDS = ("train", "eval", "predict", "export", "serve", "models", "data", "pixels", "convolve", "explain",
            "xo", "experiment", "detect-faces", "recipes", "samples", "cache", "completion")


def cnnlab(capsys, *args) -> tuple[int, str, str]:
    """``cnnlab ARGS`` in this process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse's own exits: --help, a bad choice
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def python_m_cnnlab(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(autouse=True)
def _scratch(tmp_path, monkeypatch):
    """Whatever a command writes beside it lands in a scratch folder, never the repository."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """`cnnlab train --data digits --epochs 3 --json` without --out, in a fresh folder: (folder, summary)."""
    folder = tmp_path_factory.mktemp("cli")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.chdir(folder)
        assert main(["train", "--data", "digits", "--epochs", "3", "--json"]) == 0
    return folder, json.loads(out.getvalue())


def test_help_lists_every_command_and_each_has_its_own_help(capsys):
    code, out, _ = cnnlab(capsys, "--help")
    assert code == 0
    listed = re.findall(r"^    ([a-z][a-z-]*)", out.split("options:")[0], flags=re.M)  # the COMMAND entries
    assert listed == list(COMMANDS)
    for command in COMMANDS:
        code, out, _ = cnnlab(capsys, command, "--help")
        assert code == 0 and out.startswith(f"usage: cnnlab {command} "), command


def test_models_lists_the_lecture_architectures(capsys):
    code, out, err = cnnlab(capsys, "models", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    for name in ("lecture_cnn", "lenet5", "alexnet", "zfnet", "vgg16", "vgg19_bn", "googlenet",
                 "resnet18", "resnet152", "resnet20", "efficientnet_lite0"):
        assert name in rows
    assert rows["alexnet"]["parameters"] == pytest.approx(61.1e6, rel=0.01)


def test_models_summary_shows_volumes_and_receptive_fields(capsys):
    code, out, err = cnnlab(capsys, "models", "summary", "lecture_cnn", "--input", "1x28x28")
    assert code == 0, err
    assert "28 x 28 x 32" in out.replace("28x28x32", "28 x 28 x 32")


@pytest.mark.parametrize("content, problem", [
    (b"", "empty"),
    (b"hello, I am text", "not an image"),
])
def test_bad_images_give_one_line_and_exit_2(tmp_path, content, problem):
    """Through the interpreter: exit status 2 and one line on stderr, no traceback."""
    f = tmp_path / "photo.jpg"
    f.write_bytes(content)
    proc = python_m_cnnlab("pixels", f)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "photo.jpg" in lines[0] and problem in lines[0].lower()


def test_unknown_option_values_name_the_option(tmp_path, capsys):
    code, _, err = cnnlab(capsys, "train", "--data", "no-such-data", "--out", tmp_path / "x")
    assert code == 2 and "no-such-data" in err and "Traceback" not in err
    code, _, err = cnnlab(capsys, "train", "--set", "epoch=3", "--out", tmp_path / "x")
    assert code == 2 and "unknown config key 'epoch'" in err
    # a list option arrives whole, as YAML: this one fails on its value, not character by character
    code, _, err = cnnlab(capsys, "train", "--data", "digits", "--lr-cycle", "[2, 0.3]", "--out", tmp_path / "x")
    assert code == 2 and "got [2, 0.3]" in err


def test_pixels_prints_the_matrix(tmp_path, capsys):
    from PIL import Image
    import numpy as np

    arr = (np.arange(12, dtype=np.uint8).reshape(3, 4) * 20)
    Image.fromarray(arr).save(tmp_path / "g.png")
    code, out, err = cnnlab(capsys, "pixels", tmp_path / "g.png")
    assert code == 0, err
    assert "220" in out and "3 x 4 x 1" in out


def test_train_without_out_writes_runs_task_name_and_eval_agrees(digits_run, capsys, monkeypatch):
    folder, summary = digits_run
    assert summary["out"] == "runs/classify/digits"
    assert summary["test"]["top1"] > 0.85
    monkeypatch.chdir(folder)
    code, out, err = cnnlab(capsys, "eval", "runs/classify/digits/best.pt", "--data", "digits", "--json")
    assert code == 0, err
    m = json.loads(out)
    assert 0 <= m["top1"] <= m["top5"] <= 1 and m["top1"] == pytest.approx(summary["test"]["top1"])


def test_a_data_grid_then_predict_its_top5(digits_run, capsys, tmp_path):
    folder, _ = digits_run
    code, _, err = cnnlab(capsys, "data", "info", "digits", "--split", "test", "--grid", tmp_path / "grid.png")
    assert code == 0, err
    assert (tmp_path / "grid.png").exists()
    code, out, err = cnnlab(capsys, "predict", folder / "runs/classify/digits/best.pt", tmp_path / "grid.png",
                            "--topk", "5", "--json")
    assert code == 0, err
    [result] = json.loads(out)  # one JSON shape: a list, one result per image
    top = result["top"]
    assert len(top) == 5 and sorted((t["prob"] for t in top), reverse=True) == [t["prob"] for t in top]


def test_convolve_explain_and_figure(tmp_path, capsys):
    code, out, err = cnnlab(capsys, "convolve", "--explain")
    assert code == 0, err
    assert "(W - F + 2P)/S + 1" in out and "(5 - 3 + 2*0)/1 + 1 = 3" in out
    from PIL import Image
    import numpy as np

    Image.fromarray(np.tile(np.arange(0, 250, 10, dtype=np.uint8), (20, 1))).save(tmp_path / "ramp.png")
    code, out, err = cnnlab(capsys, "convolve", tmp_path / "ramp.png", "--kernel", "sobel-x", "--kernel",
                            "0,0,0;0,1,0;0,0,0", "--out", tmp_path / "maps.png")
    assert code == 0, err
    with Image.open(tmp_path / "maps.png") as figure:
        assert figure.size == (3 * 420, 380)  # the input and two feature maps
    assert "20 x 25" in out
    code, _, err = cnnlab(capsys, "convolve", tmp_path / "ramp.png", "--kernel", "1,2;3")
    assert code == 2 and "rectangular" in err and "Traceback" not in err


def test_xo_case_study_without_training(tmp_path, capsys):
    code, out, err = cnnlab(capsys, "xo", "--no-train", "--out", tmp_path / "xo")
    assert code == 0, err
    assert "diagonal" in out and (tmp_path / "xo" / "xo_case_study.png").exists()


def test_export_onnx_then_predict_with_it(digits_run, tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    best = digits_run[0] / "runs/classify/digits/best.pt"
    code, out, err = cnnlab(capsys, "export", best, "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert code == 0, err
    assert "parity: max |logit difference|" in out
    from PIL import Image
    Image.new("L", (8, 8), 0).save(tmp_path / "blank.png")
    results = {}
    for model in (tmp_path / "m.onnx", best):
        code, out, err = cnnlab(capsys, "predict", model, tmp_path / "blank.png", "--json")
        assert code == 0, err
        [results[model.suffix]] = json.loads(out)
    assert results[".onnx"]["top"][0]["class"] == results[".pt"]["top"][0]["class"]
    assert results[".onnx"]["top"][0]["prob"] == pytest.approx(results[".pt"]["top"][0]["prob"], abs=1e-4)


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`cnnlab pixels big.png --size 1000 | head -1`: the reader leaves after one line."""
    from PIL import Image

    Image.new("L", (1000, 1000), 7).save(tmp_path / "big.png")
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "pixels", str(tmp_path / "big.png"), "--size", "1000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # like head -1: ~4 MB are still to come, far more than a pipe holds
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 141) and first.startswith(b"  7")
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


def test_quiet_training_prints_only_the_result(tmp_path, capsys):
    code, out, err = cnnlab(capsys, "train", "--data", "digits", "--epochs", "1", "--no-plots", "--quiet",
                            "--out", tmp_path / "r")
    assert code == 0
    assert err == "" and "epoch 1/1" not in out and out.startswith("test top-1 accuracy")
