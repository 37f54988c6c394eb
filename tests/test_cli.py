"""The command line as a user meets it: help, listings, one-line errors, train -> eval -> predict."""
import json
import subprocess
import sys

import pytest


def cnnlab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cnnlab", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_help_lists_the_commands():
    out = cnnlab("--help").stdout
    for command in ("train", "eval", "predict", "models", "data", "pixels"):
        assert command in out


def test_models_lists_the_lecture_architectures():
    proc = cnnlab("models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    for name in ("lecture_cnn", "lenet5", "alexnet", "zfnet", "vgg16", "vgg19_bn", "googlenet",
                 "resnet18", "resnet152", "resnet20", "efficientnet_lite0"):
        assert name in rows
    assert rows["alexnet"]["parameters"] == pytest.approx(61.1e6, rel=0.01)


def test_models_summary_shows_volumes_and_receptive_fields():
    proc = cnnlab("models", "summary", "lecture_cnn", "--input", "1x28x28")
    assert proc.returncode == 0, proc.stderr
    assert "28 x 28 x 32" in proc.stdout.replace("28x28x32", "28 x 28 x 32")


@pytest.mark.parametrize("content, problem", [
    (b"", "empty"),
    (b"hello, I am text", "not an image"),
])
def test_bad_images_give_one_line_and_exit_2(tmp_path, content, problem):
    f = tmp_path / "photo.jpg"
    f.write_bytes(content)
    proc = cnnlab("pixels", f)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "photo.jpg" in lines[0] and problem in lines[0].lower()


def test_unknown_option_values_name_the_option(tmp_path):
    proc = cnnlab("train", "--data", "no-such-data", "--out", tmp_path / "x")
    assert proc.returncode == 2 and "no-such-data" in proc.stderr and "Traceback" not in proc.stderr
    proc = cnnlab("train", "--set", "epoch=3", "--out", tmp_path / "x")
    assert proc.returncode == 2 and "unknown config key 'epoch'" in proc.stderr
    # a list option arrives whole, as YAML: this one fails on its value, not character by character
    proc = cnnlab("train", "--data", "digits", "--lr-cycle", "[2, 0.3]", "--out", tmp_path / "x")
    assert proc.returncode == 2 and "got [2, 0.3]" in proc.stderr


def test_pixels_prints_the_matrix(tmp_path):
    from PIL import Image
    import numpy as np

    arr = (np.arange(12, dtype=np.uint8).reshape(3, 4) * 20)
    Image.fromarray(arr).save(tmp_path / "g.png")
    proc = cnnlab("pixels", tmp_path / "g.png")
    assert proc.returncode == 0, proc.stderr
    assert "220" in proc.stdout and "3 x 4 x 1" in proc.stdout


def test_train_eval_predict_from_the_command_line(tmp_path):
    proc = cnnlab("train", "--data", "digits", "--epochs", "3", "--json", cwd=tmp_path)  # no --out: runs/TASK/NAME
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["out"] == "runs/classify/digits"
    assert summary["test"]["top1"] > 0.85
    proc = cnnlab("eval", "runs/classify/digits/best.pt", "--data", "digits", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    assert 0 <= m["top1"] <= m["top5"] <= 1 and m["top1"] == pytest.approx(summary["test"]["top1"])
    proc = cnnlab("data", "info", "digits", "--split", "test", "--grid", "grid.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "grid.png").exists()
    proc = cnnlab("predict", "runs/classify/digits/best.pt", "grid.png", "--topk", "5", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(proc.stdout)  # one JSON shape: a list, one result per image
    top = result["top"]
    assert len(top) == 5 and sorted((t["prob"] for t in top), reverse=True) == [t["prob"] for t in top]


def test_convolve_explain_and_figure(tmp_path):
    proc = cnnlab("convolve", "--explain")
    assert proc.returncode == 0, proc.stderr
    assert "(W - F + 2P)/S + 1" in proc.stdout and "(5 - 3 + 2*0)/1 + 1 = 3" in proc.stdout
    from PIL import Image
    import numpy as np

    Image.fromarray(np.tile(np.arange(0, 250, 10, dtype=np.uint8), (20, 1))).save(tmp_path / "ramp.png")
    proc = cnnlab("convolve", tmp_path / "ramp.png", "--kernel", "sobel-x", "--kernel", "0,0,0;0,1,0;0,0,0",
                  "--out", tmp_path / "maps.png")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "maps.png").stat().st_size > 0 and "20 x 25" in proc.stdout
    proc = cnnlab("convolve", tmp_path / "ramp.png", "--kernel", "1,2;3")
    assert proc.returncode == 2 and "rectangular" in proc.stderr and "Traceback" not in proc.stderr


def test_xo_case_study_without_training(tmp_path):
    proc = cnnlab("xo", "--no-train", "--out", tmp_path / "xo")
    assert proc.returncode == 0, proc.stderr
    assert "diagonal" in proc.stdout and (tmp_path / "xo" / "xo_case_study.png").exists()


def test_export_onnx_then_predict_with_it(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    proc = cnnlab("train", "--data", "digits", "--epochs", "1", "--no-plots", "--out", "r", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = cnnlab("export", "r/best.pt", "--format", "onnx", "--out", "m.onnx", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "parity: max |logit difference|" in proc.stdout
    from PIL import Image
    Image.new("L", (8, 8), 0).save(tmp_path / "blank.png")
    [onnx] = json.loads(cnnlab("predict", "m.onnx", "blank.png", "--json", cwd=tmp_path).stdout)
    [torch_] = json.loads(cnnlab("predict", "r/best.pt", "blank.png", "--json", cwd=tmp_path).stdout)
    assert onnx["top"][0]["class"] == torch_["top"][0]["class"]
    assert onnx["top"][0]["prob"] == pytest.approx(torch_["top"][0]["prob"], abs=1e-4)


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
    from cnnlab.cli import main

    assert main(["train", "--data", "digits", "--epochs", "1", "--no-plots", "--quiet", "--out", str(tmp_path / "r")]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "epoch 1/1" not in out and out.startswith("test top-1 accuracy")
