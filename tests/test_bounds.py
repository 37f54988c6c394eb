"""Every size read from a file is bounded before it is allocated, and what is printed is clean
and valid (issue 23, sections 3 and 4).

Sizes: a checkpoint or safetensors file whose model_args or input_shape would take tens of GB,
class counts past 100,000, NaN or zero normalisation, training at --image-size 4096, convolve and
pixels on a 64-megapixel image, cache files. Printing: names with escape sequences, --json
without NaN, the service never answering 200 with null probabilities.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.cli import json_text, main
from cnnlab.errors import CnnlabError

QUICK_S = 20  # seconds a refusal may take (it allocates nothing; the first one imports the models)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bounds") / "run"
    cnnlab.train(data="digits", epochs=1, batch_size=64, plots=False, workers=0, out=str(out), log=None)
    return out / "best.pt"


def variant(good: Path, folder: Path, change) -> Path:
    state = torch.load(good, weights_only=True)
    change(state)
    path = folder / "changed.pt"
    torch.save(state, path)
    return path


def refused(path, *words):
    start = time.monotonic()
    with pytest.raises(CnnlabError) as e:
        cnnlab.load(path, device="cpu")
    assert time.monotonic() - start < QUICK_S
    message = str(e.value)
    assert str(Path(path).name) in message and all(w in message for w in words), message
    return message


# ---------------------------------------------------------------------- checkpoints and exports
@pytest.mark.parametrize("change, words", [
    (lambda s: s["config"].update(model_args={"widths": [10**9]}), ["model_args", "would need", "GB", "available"]),
    (lambda s: s["task"].update(input_shape=[1, 100_000, 100_000]), ["input_shape", "1..8192"]),
    (lambda s: s["task"].update(classes=[f"c{i}" for i in range(200_000)]), ["200,000 classes", "at most 100,000"]),
    (lambda s: s["task"].update(mean=[float("nan")]), ["mean", "nan"]),
    (lambda s: s["task"].update(std=[0.0]), ["std", "not a positive number"]),
    (lambda s: s["model"]["head.logits.bias"].fill_(float("nan")), ["head.logits.bias", "NaN"]),
    (lambda s: s["config"].update(model_args={"widths": [0]}), ["model_args", "no weights"]),
    (lambda s: s["config"].update(model_args={"widths": [-4]}), ["model_args", "negative dimension"]),
], ids=["widths 1e9", "100000x100000", "200k classes", "NaN mean", "zero std", "NaN weights", "width 0", "width -4"])
def test_a_checkpoint_is_bounded_before_its_model_is_built(good, tmp_path, change, words):
    refused(variant(good, tmp_path, change), *words)


def test_a_safetensors_file_is_bounded_by_its_metadata(good, tmp_path):
    from safetensors.torch import load_file, save_file

    exported = Path(cnnlab.export(str(good), format="safetensors", out=str(tmp_path / "w.safetensors"))["path"])
    from safetensors import safe_open

    with safe_open(str(exported), framework="pt") as f:
        meta = json.loads(f.metadata()["cnnlab"])
    meta["config"]["model_args"] = {"widths": [10**9]}
    huge = tmp_path / "huge.safetensors"
    save_file(load_file(str(exported)), str(huge), metadata={"cnnlab": json.dumps(meta)})
    refused(huge, "model_args", "would need")
    meta["config"]["model_args"] = {}
    meta["task"]["input_shape"] = [1, 100_000, 100_000]
    save_file(load_file(str(exported)), str(huge), metadata={"cnnlab": json.dumps(meta)})
    refused(huge, "input_shape")


def test_model_args_of_zero_width_are_refused_by_train(tmp_path):
    with pytest.raises(CnnlabError, match=r"model_args .*widths.*no weights"):
        cnnlab.train(data="digits", model_args={"widths": [0, 8]}, epochs=1, log=None, out=str(tmp_path / "r"))


# ---------------------------------------------------------------------- training and caches
def image_folder(root: Path, n: int = 4, side: int = 32) -> Path:
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_image_size_4096_is_refused_with_figures_before_any_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    data = image_folder(tmp_path / "pets")
    start = time.monotonic()
    with pytest.raises(CnnlabError) as e:
        cnnlab.train(data=str(data), model="lecture_cnn", image_size=4096, batch_size=64, epochs=1, log=None,
                     val_fraction=0.25, out=str(tmp_path / "run"))
    message = str(e.value)
    assert "on 3x4096x4096 images, batch 64, would need" in message and "available; use --image-size <= " in message
    assert time.monotonic() - start < QUICK_S
    assert not list((tmp_path / "cache").rglob("*.pt*"))  # nothing decoded, nothing cached


def test_a_failed_cache_write_leaves_no_file(tmp_path, monkeypatch):
    from cnnlab.data.formats import class_folders as folder

    data = image_folder(tmp_path / "pets")

    def broken(obj, f, *a, **k):
        f.write(b"half a cache")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(folder.torch, "save", broken)
    with pytest.raises(OSError):
        folder.load_folder(data, "train", cache_dir=tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_a_cache_that_would_fill_the_disk_is_not_written(tmp_path, monkeypatch):
    import shutil

    from cnnlab.data.formats import class_folders as folder

    data = image_folder(tmp_path / "pets")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10 << 30, 10 << 30, 100 << 20))
    with pytest.warns(UserWarning, match="not caching"):
        split = folder.load_folder(data, "train", cache_dir=tmp_path / "cache")
    assert len(split) > 0 and not list((tmp_path / "cache").rglob("*.pt*"))


def test_cache_command_lists_and_clears_only_cnnlabs_files(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("CNNLAB_CACHE", str(cache))
    from cnnlab.data.formats.class_folders import load_folder

    load_folder(image_folder(tmp_path / "pets"), "train")
    (cache / "segment").mkdir()
    (cache / "segment" / ("ab" * 12 + ".pt")).write_bytes(b"x" * 1000)
    (cache / "crash-20260101-120000-42.txt").write_text("trace")
    (cache / "data" / "cifar10").mkdir(parents=True)
    (cache / "data" / "cifar10" / "batch").write_bytes(b"y" * 10)
    (cache / "my-notes.txt").write_text("not cnnlab's")
    assert main(["cache"]) == 0
    listing = capsys.readouterr().out
    assert "decoded image folders" in listing and "internal-error traces" in listing and "downloaded" in listing
    assert main(["cache", "clear"]) == 0
    assert "deleted 3 files" in capsys.readouterr().out
    left = sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())
    assert left == ["data/cifar10/batch", "my-notes.txt"]


# ---------------------------------------------------------------------- convolve and pixels
@pytest.fixture(scope="module")
def big_png(tmp_path_factory) -> Path:
    a = np.zeros((8000, 8000), np.uint8)
    a[::50] = 255
    path = tmp_path_factory.mktemp("big") / "big.png"
    Image.fromarray(a).save(path)
    return path


@pytest.mark.slow
def test_convolve_of_a_64_megapixel_image_fits_in_1_gb(big_png, tmp_path):
    code = ("import resource, cnnlab.api, matplotlib.pyplot, torch\n"
            "rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
            "base = rss()\n"
            f"r = cnnlab.api.convolve({str(big_png)!r}, ['edge'], out={str(tmp_path / 'fm.png')!r})\n"
            "print(rss() - base, r['feature_maps'][0]['size'])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    grown, size = proc.stdout.split(" ", 1)
    assert int(grown) < 1 << 30, f"peak memory grew {int(grown) / 1e9:.2f} GB"
    assert size.strip() == "(8000, 8000)"


def test_convolve_in_bands_equals_one_pass():
    from cnnlab.interpret import convolve

    image = np.random.default_rng(0).random((300, 200))
    whole = convolve.convolve_image(image, ["sobel-x", "1,2;3,4"], stride=2, padding=1)
    old = convolve.BAND_BYTES
    try:
        convolve.BAND_BYTES = 4096  # forces bands of a few rows
        bands = convolve.convolve_image(image, ["sobel-x", "1,2;3,4"], stride=2, padding=1)
        same = convolve.convolve_image(image, ["edge"])
    finally:
        convolve.BAND_BYTES = old
    for a, b in zip(whole["feature_maps"], bands["feature_maps"]):
        np.testing.assert_allclose(a["feature_map"], b["feature_map"])
    np.testing.assert_allclose(same["feature_maps"][0]["feature_map"],
                               convolve.convolve_image(image, ["edge"])["feature_maps"][0]["feature_map"])


def test_pixels_refuses_a_grid_too_large_to_read_unless_shrunk(big_png):
    start = time.monotonic()
    with pytest.raises(CnnlabError, match=r"big.png: the grid would be 8000x8000 numbers.*--size"):
        cnnlab.pixels(str(big_png))
    assert time.monotonic() - start < 2  # the header is read, not the pixels
    grid, shape = cnnlab.pixels(str(big_png), size=40)
    assert shape == (8000, 8000, 1) and len(grid.splitlines()) == 40


# ---------------------------------------------------------------------- clean, valid output
def test_class_names_from_a_checkpoint_reach_the_terminal_clean(good, tmp_path, capsys):
    names = ["\x1b[2Jzero", "a\nb", *[str(i) for i in range(2, 10)]]
    path = variant(good, tmp_path, lambda s: s["task"].update(classes=names))
    image = tmp_path / "digit.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    assert main(["predict", str(path), str(image), "--topk", "10", "--json"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and {"zero", "a; b"} <= {t["class"] for t in json.loads(out)[0]["top"]}
    assert main(["predict", str(path), str(image), "--topk", "10"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "a; b" in out and not any(line.strip() == "b" for line in out.splitlines())


def test_json_output_has_null_for_nan_and_every_json_print_uses_it():
    assert json.loads(json_text({"top1": float("nan"), "loss": [float("inf"), 1.5]})) == {"top1": None, "loss": [None, 1.5]}
    sources = [p.read_text() for p in (Path(cnnlab.__file__).parent / "cli").glob("*.py")]
    assert sum(source.count("json.dumps(") for source in sources) == 1  # the helper's own


def test_the_service_never_answers_200_with_null_probabilities(good, monkeypatch):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from cnnlab import api
    from cnnlab.serve import create_app

    buffer = __import__("io").BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, "PNG")
    with TestClient(create_app([str(good)], device="cpu")) as client:
        monkeypatch.setattr(api, "predict", lambda *a, **k: [{"top": [{"class": "0", "prob": float("nan")}]}])
        r = client.post("/v1/predict", files={"file": ("d.png", buffer.getvalue(), "image/png")})
    assert r.status_code == 500 and "NaN" in r.json()["detail"]


def test_the_docs_list_503():
    serve_docs = (Path(__file__).resolve().parents[1] / "docs" / "serve.md").read_text()
    assert "| 503 |" in serve_docs
