"""The web page explains the user's own model (CNN Explainer style): the API behind it with FastAPI's
TestClient, then the page itself in headless Chromium against `cnnlab serve` (small random-weight
checkpoints: a 1-channel 8x8 digits model and a 3-channel 16x16 one, so the whole file stays fast)."""
import dataclasses
import io
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi_offline", reason="the serve extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

import cnnlab  # noqa: E402
from cnnlab.engine.checkpoint import save_checkpoint  # noqa: E402
from cnnlab.engine.config import TrainConfig  # noqa: E402
from cnnlab.serve import create_app  # noqa: E402
from cnnlab.serve.render import readable  # noqa: E402
from cnnlab.tasks.classify import ClassifyTask  # noqa: E402

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT_S = 60


def make_checkpoint(folder: Path, name: str, shape: tuple[int, int, int], mean, std) -> Path:
    """A lecture_cnn checkpoint with random weights and non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    cfg = TrainConfig(model="lecture_cnn", data="digits")
    task = ClassifyTask([f"c{i}" for i in range(10)] if shape[0] == 3 else [str(i) for i in range(10)],
                        mean, std, shape)
    model = task.build_model(cfg).train()
    with torch.no_grad():
        for _ in range(3):
            model(task.prepare(torch.randint(0, 256, (16, *shape), dtype=torch.uint8)))
    return save_checkpoint({"model": model.eval().state_dict(), "task": task.state(),
                            "config": dataclasses.asdict(cfg)}, folder / name / "best.pt")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    return (make_checkpoint(folder, "digits", (1, 8, 8), [0.3], [0.4]),
            make_checkpoint(folder, "rgb", (3, 16, 16), [0.5, 0.4, 0.3], [0.25, 0.2, 0.3]))


@pytest.fixture(scope="module")
def client(checkpoints):
    with TestClient(create_app(list(checkpoints), device="cpu")) as c:
        yield c


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def digit_png():
    return png_bytes(cnnlab.load_dataset("digits", "test").images[3][0].numpy())


@pytest.fixture(scope="module")
def photo_png():
    y, x = np.mgrid[0:40, 0:48]
    rgb = np.stack([x * 5, y * 6, (x + y) * 3], -1).clip(0, 255).astype(np.uint8)
    return png_bytes(rgb)


def post(client, path, data, name="x.png", **fields):
    return client.post(path, files={"file": (name, data, "image/png")}, data=fields)


def detail(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"} and "\n" not in body["detail"]
    return body["detail"]


# ---------------------------------------------------------------------- API
def test_readable_layer_names():
    assert readable("net._blocks.3._depthwise_conv") == "block 3 / depthwise conv"
    assert readable("features.block1.conv") == "block 1 / conv"
    assert readable("layer1.0.conv1") == "layer 1 / block 0 / conv 1"
    assert readable("net._conv_stem") == "conv stem"


def test_models_list_typed_options_with_help(client):
    digits = next(m for m in client.get("/v1/models").json() if m["name"] == "digits")
    (topk,) = digits["option_fields"]
    assert topk == {"name": "topk", "label": "topk", "type": "int", "default": 5, "low": 1, "high": None,
                    "help": "how many of the most probable classes to show per image"}


def test_architecture_rows_from_the_model_summary(client):
    arch = client.get("/v1/architecture", params={"model": "digits"}).json()
    rows = {r["name"]: r for r in arch["layers"]}
    expected = {r.name: r for r in cnnlab.api.layers(cnnlab.load(client.app.state.models["digits"].model.source))}
    assert rows.keys() == expected.keys()
    conv = rows["features.block2.conv"]
    assert conv["conv"] and conv["label"] == "block 2 / conv" and conv["type"] == "Conv2d"
    assert conv["output"] == list(expected["features.block2.conv"].output)
    assert conv["receptive_field"] == expected["features.block2.conv"].receptive_field
    assert conv["params"] == expected["features.block2.conv"].params > 0
    assert [c["label"] for c in arch["cam_layers"]] == ["block 1 / conv", "block 2 / conv", "block 3 / conv"]
    assert arch["cam_layer"].startswith("features.block3")
    assert "not served" in detail(client.get("/v1/architecture", params={"model": "nope"}), 404)


def test_inspect_matches_predict_and_explain(client, digit_png):
    predicted = post(client, "/v1/predict", digit_png, model="digits").json()["top"]
    explained = post(client, "/v1/explain", digit_png, model="digits").json()["prediction"]
    r = post(client, "/v1/inspect", digit_png, model="digits", layer="features.block1.conv").json()
    assert [p["class"] for p in r["prediction"]] == [p["class"] for p in predicted]
    for a, b, c in zip(r["prediction"], predicted, explained):
        assert abs(a["prob"] - b["prob"]) < 1e-6 and abs(a["prob"] - c["prob"]) < 1e-6
    assert r["seen"]["shape"] == [1, 8, 8] and r["seen"]["image"].startswith("data:image/png")
    assert r["seen"]["normalised"].startswith("data:image/png") and r["seen"]["mean"] == [0.3]
    assert r["cam"]["class"] == predicted[0]["class"] and abs(r["cam"]["prob"] - predicted[0]["prob"]) < 1e-5
    layer = r["layer"]
    assert layer["label"] == "block 1 / conv" and len(layer["maps"]) == min(32, layer["shape"][0])
    m = layer["maps"][0]
    weights = client.app.state.models["digits"].model.model.get_submodule("features.block1.conv").weight
    k = weights[m["channel"]].detach()  # (C_in, k, k)
    assert np.allclose(m["kernel_sum"], k.sum(0).numpy(), atol=1e-6)
    assert np.allclose(m["kernel_first"], k[:3].numpy(), atol=1e-6) and m["in_channels"] == 1
    assert layer["receptive_field"] == 3 and layer["jump"] == 1


def test_inspect_cam_class_and_layer_pickers(client, photo_png):
    base = post(client, "/v1/inspect", photo_png, model="rgb").json()
    assert base["seen"]["shape"] == [3, 16, 16]
    second = base["prediction"][1]["class"]
    r = post(client, "/v1/inspect", photo_png, model="rgb", target_class=second,
             cam_layer="features.block1.conv").json()
    assert r["cam"]["class"] == second and r["cam"]["label"] == "block 1 / conv"
    assert abs(r["cam"]["prob"] - base["prediction"][1]["prob"]) < 1e-5
    assert "layer" not in base


def test_inspect_errors_are_one_line(client, digit_png):
    assert "unknown class" in detail(post(client, "/v1/inspect", digit_png, model="digits", target_class="cat"), 422)
    assert "unknown layer" in detail(post(client, "/v1/inspect", digit_png, model="digits", cam_layer="nope"), 422)
    assert "not a conv layer" in detail(post(client, "/v1/inspect", digit_png, model="digits",
                                             layer="features.block1.bn"), 422)
    assert "not an image" in detail(post(client, "/v1/inspect", b"hello", model="digits"), 415)
    assert "not served" in detail(post(client, "/v1/inspect", digit_png, model="x"), 404)


def test_explainer_refuses_models_it_cannot_open(checkpoints, digit_png):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    with TestClient(create_app([checkpoints[0]], device="cpu", runtime="onnxruntime")) as c:
        c.app.state.models["digits"].model = c.app.state.models["digits"].fast  # served as a bare ONNX model
        assert "explainer opens up PyTorch classifiers" in detail(post(c, "/v1/inspect", digit_png), 422)
        assert "explainer" in detail(c.get("/v1/architecture"), 422)
