"""The Python API fails as clearly as the CLI: every public function x wrong types, empty and odd
inputs. Each call either works (a PIL image in any mode is converted) or raises CnnlabError,
TypeError or ValueError whose message names the parameter or the file; never a raw error from
pathlib, PIL, NumPy or torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.errors import CnnlabError

CLEAR = (CnnlabError, TypeError, ValueError)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("misuse")
    cnnlab.train(data="digits", epochs=1, batch_size=64, plots=False, workers=0, out=str(root / "run"), log=None)
    (root / "folder").mkdir()
    return {"ckpt": str(root / "run" / "best.pt"), "root": root}


def bad_values(root):
    """name -> (value, what a message may name it by)."""
    return {
        "None": (None, []), "42": (42, []), "empty string": ("", []),
        "missing path": (str(root / "no-such-file.png"), ["no-such-file.png"]),
        "a directory": (str(root / "folder"), ["folder"]),
        "empty list": ([], []),
        "0x0 array": (np.zeros((0, 0), np.uint8), []),
        "float64 array": (np.random.default_rng(0).random((8, 8)), []),
        "5-D tensor": (torch.zeros(1, 1, 1, 8, 8, dtype=torch.uint8), []),
        "PIL F": (Image.new("F", (8, 8), 3.5), []),
        "PIL CMYK": (Image.new("CMYK", (8, 8), (0, 0, 0, 0)), []),
        "PIL I;16": (Image.new("I;16", (8, 8), 300), []),
        "PIL LA": (Image.new("LA", (8, 8), (100, 128)), []),
    }


PIL_MODES = {"PIL F", "PIL CMYK", "PIL I;16", "PIL LA"}  # converted as a file of them would read
UNREADABLE = {"missing path", "a directory"}  # predict goes on: the image's result says why (tested below)

# function -> (how to call it with the bad value x, the parameter's name, cases that must work)
CALLS = {
    "load": (lambda w, x: cnnlab.load(x), "checkpoint", set()),
    "evaluate": (lambda w, x: cnnlab.evaluate(x), "checkpoint", set()),
    "predict (model)": (lambda w, x: cnnlab.predict(x, [w["image"]]), "model", set()),
    "predict (images)": (lambda w, x: cnnlab.predict(w["ckpt"], x), "images", PIL_MODES | UNREADABLE),
    "export": (lambda w, x: cnnlab.export(x), "checkpoint", set()),
    "pixels": (lambda w, x: cnnlab.pixels(x), "image", set()),
    "data_info": (lambda w, x: cnnlab.data_info(x), "spec", set()),
    "model_summary": (lambda w, x: cnnlab.model_summary(x), "name", set()),
    "convolve": (lambda w, x: cnnlab.convolve(x, ["edge"], out=None), "image", {"float64 array"} | PIL_MODES),
    "convolve (kernels)": (lambda w, x: cnnlab.convolve(w["image"], x, out=None), "kernels", set()),
    "explain_convolution": (lambda w, x: cnnlab.explain_convolution(image=x), "image",
                            {"None", "float64 array", "PIL F", "PIL I;16"}),  # 2-D: a matrix to walk through
    "explain (checkpoint)": (lambda w, x: cnnlab.explain(x, w["image"], out=str(w["root"] / "ex")), "checkpoint", set()),
    "explain (image)": (lambda w, x: cnnlab.explain(w["ckpt"], x, out=str(w["root"] / "ex")), "image", set()),
    "experiment": (lambda w, x: cnnlab.experiment(x, log=None), "name", set()),
    "detect_faces": (lambda w, x: cnnlab.detect_faces(x), "image", set()),
    "get_model": (lambda w, x: cnnlab.get_model(x), "name", set()),
    "list_models": (lambda w, x: cnnlab.list_models(x), "pattern", {"None", "empty string", "missing path",
                                                                     "a directory"}),  # any text: a pattern
    "load_dataset": (lambda w, x: cnnlab.load_dataset(x, "train"), "spec", set()),
    "train (data)": (lambda w, x: cnnlab.train(data=x, epochs=1, log=None, out=str(w["root"] / "t")), "data", {"None"}),
    "train (model_args)": (lambda w, x: cnnlab.train(model_args=x, epochs=1, log=None, out=str(w["root"] / "t")),
                           "model_args", {"None"}),
}
SLOW_VALID = {"train (data)", "train (model_args)"}  # None is valid: it would train
CASES = ["None", "42", "empty string", "missing path", "a directory", "empty list", "0x0 array", "float64 array",
         "5-D tensor", "PIL F", "PIL CMYK", "PIL I;16", "PIL LA"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("call", list(CALLS))
def test_public_function_refuses_clearly(world, tmp_path, monkeypatch, call, case):
    monkeypatch.chdir(tmp_path)
    image = tmp_path / "digit.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    w = {**world, "image": str(image)}
    fn, param, works = CALLS[call]
    value, shown = bad_values(world["root"])[case]
    if case in works:
        if call in SLOW_VALID:
            pytest.skip("a valid call that would train")
        fn(w, value)  # converted, not refused
        return
    try:
        fn(w, value)
    except CLEAR as e:
        message = str(e)
        assert any(n.lower() in message.lower() for n in [param, *shown]), f"{type(e).__name__} does not name {param}: {message}"
        return
    except Exception as e:  # noqa: BLE001 -- the point: what else came out
        pytest.fail(f"{call}({case}) raised a raw {type(e).__name__}: {e}")
    pytest.fail(f"{call}({case}) was accepted")


def test_predict_names_an_unreadable_image_in_its_result(world, tmp_path):
    results = cnnlab.predict(world["ckpt"], [str(tmp_path / "gone.png"), str(tmp_path)])
    assert [set(r) for r in results] == [{"image", "error"}] * 2
    assert "gone.png: no such file" in results[0]["error"] and "is a folder" in results[1]["error"]


@pytest.mark.parametrize("mode, value", [("F", 3.5), ("CMYK", (0, 0, 0, 0)), ("I;16", 300), ("LA", (100, 128)),
                                         ("I", 70000), ("YCbCr", (16, 128, 128)), ("1", 1), ("P", 3)])
def test_pil_images_in_any_mode_become_uint8_tensors(mode, value):
    from cnnlab.images import as_image

    for channels in (None, 1, 3):
        t = as_image(Image.new(mode, (5, 4), value), channels)
        assert t.dtype == torch.uint8 and t.shape[1:] == (4, 5)
