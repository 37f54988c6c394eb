"""The web page explains the user's own model (CNN Explainer style): the API behind it with FastAPI's
TestClient, then the page itself in headless Chromium against `cnnlab serve` (small random-weight
checkpoints: a 1-channel 8x8 digits model and a 3-channel 16x16 one, so the whole file stays fast)."""
import io
import os
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
from serving import CHROMEDRIVER, CHROMIUM, chromium, served  # noqa: E402  (tests/serving.py)

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
                            "config": cfg.to_dict()}, folder / name / "best.pt")


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
    assert arch["cam_layer"] == "features.block3.relu" and arch["cam_layer_label"] == "block 3 / relu"
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


def test_explainer_refuses_models_it_cannot_open(checkpoints, digit_png, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    onnx = cnnlab.api.export(str(checkpoints[0]), out=tmp_path / "digits.onnx", device="cpu")["path"]
    with TestClient(create_app([f"exported={onnx}"], device="cpu")) as c:
        assert c.get("/v1/models").json()[0]["explain"] is False  # the page hides its explainer
        assert "explainer opens up PyTorch classifiers" in detail(post(c, "/v1/inspect", digit_png), 422)
        assert "explainer" in detail(c.get("/v1/architecture"), 422)


def test_network_overview_and_one_units_arithmetic(client, photo_png):
    """/v1/network: each conv, ReLU and pool layer's maps and the softmax of predict; /v1/unit: a
    conv value as the sum of the kernel times the input patch, equal to the layer's own output,
    then BatchNorm and ReLU; a max-pool value as its window's max; errors in words."""
    r = post(client, "/v1/network", photo_png, model="rgb").json()
    names = [L["name"] for L in r["layers"]]
    assert names == [f"features.block{b}.{k}" for b in (1, 2, 3) for k in ("conv", "relu", "pool")]
    assert all(len(L["maps"]) == 4 for L in r["layers"]) and r["layers"][3]["shape"] == [64, 8, 8]
    assert [m["channel"] for m in r["layers"][3]["maps"]] == [m["channel"] for m in r["layers"][5]["maps"]]  # one path
    top = post(client, "/v1/predict", photo_png, model="rgb").json()["top"]
    assert r["softmax"]["classes"] == [t["class"] for t in top] and r["path_class"] == top[0]["class"]
    assert np.allclose(r["softmax"]["probs"], [t["prob"] for t in top], atol=1e-5)

    lm = client.app.state.models["rgb"].model
    outs = {}
    hooks = [lm.model.get_submodule(n).register_forward_hook(lambda m, a, o, n=n: outs.__setitem__(n, o.detach().clone()[0]))
             for n in ("features.block1.pool", "features.block2.conv", "features.block2.norm", "features.block2.relu")]
    with torch.no_grad():
        lm.model.eval()(lm.task.prepare(lm.read(cnnlab.images.read_image(photo_png, channels=3))[None]))
    for h in hooks:
        h.remove()
    # the predicted class's path: at each conv, the channels whose activation x gradient of that
    # class's logit, summed over the map, is largest; order=active: the largest mean activation
    acts = {}
    hooks = [lm.model.get_submodule(n).register_forward_hook(lambda m, a, o, n=n: acts.__setitem__(n, o))
             for n in ("features.block1.conv", "features.block2.conv", "features.block3.conv")]
    x = lm.task.prepare(lm.read(cnnlab.images.read_image(photo_png, channels=3))[None]).requires_grad_(True)
    logit = lm.model(x)[0, lm.task.classes.index(top[0]["class"])]
    grads = torch.autograd.grad(logit, list(acts.values()))
    for h in hooks:
        h.remove()
    for (name, a), g in zip(acts.items(), grads):
        want = (a.detach()[0] * g[0]).sum((1, 2)).topk(4).indices.tolist()
        assert [m["channel"] for m in r["layers"][names.index(name)]["maps"]] == want, name
    active = post(client, "/v1/network", photo_png, model="rgb", order="active").json()
    assert active["order"] == "active" and [m["channel"] for m in active["layers"][3]["maps"]] == \
        outs["features.block2.conv"].mean((1, 2)).topk(4).indices.tolist()
    u = post(client, "/v1/unit", photo_png, model="rgb", layer="features.block2.conv", channel=5, y=0, x=3).json()
    conv = lm.model.get_submodule("features.block2.conv")
    patch = torch.nn.functional.pad(outs["features.block1.pool"], (1, 1, 1, 1))[:, 0:3, 3:6]  # (32, 3, 3), padding 1
    assert u["rows"] == [-1, 0, 1] and u["cols"] == [2, 3, 4] and u["in_channels"] == 32
    want = (patch * conv.weight[5].detach()).sum((1, 2))  # per input channel
    for c in u["channels"]:
        assert np.allclose(c["patch"], patch[c["channel"]].numpy(), atol=1e-6)
        assert abs(c["sum"] - float(want[c["channel"]])) < 1e-5
    assert abs(u["total"] - float(outs["features.block2.conv"][5, 0, 3])) < 1e-4
    assert abs(u["output"] - float(outs["features.block2.conv"][5, 0, 3])) < 1e-6
    bn, relu = u["after"]
    assert bn["type"] == "BatchNorm2d" and abs(bn["value"] - float(outs["features.block2.norm"][5, 0, 3])) < 1e-6
    assert abs((bn["input"] - bn["mean"]) / (bn["var"] + bn["eps"]) ** 0.5 * bn["gamma"] + bn["beta"] - bn["value"]) < 1e-5
    assert relu["value"] == max(0.0, bn["value"]) == pytest.approx(float(outs["features.block2.relu"][5, 0, 3]))
    pool = post(client, "/v1/unit", photo_png, model="rgb", layer="features.block1.pool", channel=2).json()
    assert pool["output"] == pool["total"] == max(v for row in pool["window"] for v in row)
    assert "conv and max-pool" in detail(post(client, "/v1/unit", photo_png, model="rgb", layer="features.block1.norm",
                                              channel=0), 422)
    assert "channels 0..63" in detail(post(client, "/v1/unit", photo_png, model="rgb", layer="features.block2.conv",
                                           channel=64), 422)
    assert "maps are 8x8" in detail(post(client, "/v1/unit", photo_png, model="rgb", layer="features.block2.conv",
                                         channel=0, y=8, x=0), 422)
    assert "not a layer" in detail(post(client, "/v1/unit", photo_png, model="rgb", layer="nope", channel=0), 422)


# ---------------------------------------------------------------------- the page, in Chromium
@pytest.fixture(scope="module")
def service(checkpoints, tmp_path_factory):
    """`cnnlab serve DIGITS RGB` on a free loopback port; its base URL."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)")
    pytest.importorskip("selenium", reason="selenium is not installed (the test extra)")
    pytest.importorskip("uvicorn", reason="the serve extra is not installed")
    with served(checkpoints, tmp_path_factory.mktemp("serve") / "serve.log", WAIT_S) as url:
        yield url


@pytest.fixture(scope="module")
def browser(service, tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium"), "1400,1400")
    yield driver
    driver.quit()


def open_page(browser, service, model: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(service + "/")
    wait = WebDriverWait(browser, WAIT_S)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 2)
    Select(browser.find_element(By.ID, "model")).select_by_value(model)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#cam-layer option"))
    return wait


def text(browser, css: str) -> str:
    """The text of the first element matching ``css`` ("" when none), read in one step: the page
    replaces its results as answers arrive, so a found element may be gone a moment later."""
    return browser.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css)


def visible(browser, element_id: str) -> bool:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, element_id).is_displayed()


def test_page_before_upload_options_and_drawing_pad(service, browser):
    from selenium.webdriver.common.by import By

    open_page(browser, service, "digits")
    broken = browser.execute_script("return [...document.images].filter(i => i.offsetParent !== null && "
                                    "!(i.complete && i.naturalWidth > 0)).map(i => i.id || i.alt)")
    assert broken == [] and not visible(browser, "preview") and visible(browser, "no-image")
    assert visible(browser, "pad") and visible(browser, "explain-panel")  # digits: one channel
    topk = browser.find_element(By.ID, "option-topk")
    assert topk.get_attribute("value") == "5" and topk.get_attribute("min") == "1"
    assert topk.get_attribute("step") == "1" and "most probable classes" in topk.get_attribute("title")
    assert "how many of the most probable classes to show per image (default 5)" in \
        browser.find_element(By.ID, "options").text
    assert browser.find_element(By.CSS_SELECTOR, "label[for=option-topk]").text.startswith("topk")
    open_page(browser, service, "rgb")
    assert not visible(browser, "pad")  # three channels: nothing to draw with white ink


def test_page_explains_an_upload_step_by_step(service, browser, tmp_path, photo_png):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    photo = tmp_path / "photo.png"
    photo.write_bytes(photo_png)
    wait = open_page(browser, service, "rgb")
    browser.find_element(By.ID, "file").send_keys(str(photo))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=top] .prob"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=explainer-cam] figcaption"))

    # what the model saw: 16x16 after resizing, beside the upload
    wait.until(lambda d: d.execute_script("return document.querySelector('[data-testid=seen] img').naturalWidth") == 16)
    assert visible(browser, "preview")
    assert "resized to 16x16x3" in text(browser, "[data-testid=seen] figcaption")

    # Grad-CAM: the class picker holds the top-5 with the same probabilities as the prediction
    bars = browser.find_elements(By.CSS_SELECTOR, "[data-testid=top] .prob")
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid=top] .label")]
    options = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#cam-class option")]
    assert options == [f"{c} (p = {float(b.text):.3f})" for c, b in zip(labels, bars)]
    caption = text(browser, "[data-testid=explainer-cam] figcaption")
    assert f'"{labels[0]}"' in caption and "at layer block 3 / relu" in caption  # the CLI's default CAM layer
    Select(browser.find_element(By.ID, "cam-class")).select_by_value(labels[1])
    wait.until(lambda d: f'"{labels[1]}"' in text(d, "[data-testid=explainer-cam] figcaption"))
    layers = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#cam-layer option")]
    assert layers == ["block 1 / conv", "block 2 / conv", "block 3 / conv", "block 3 / relu (default)"]
    Select(browser.find_element(By.ID, "cam-layer")).select_by_visible_text("block 1 / conv")
    wait.until(lambda d: "at layer block 1 / conv" in text(d, "[data-testid=explainer-cam] figcaption"))

    # the architecture, from the model summary; clicking a conv layer shows its maps for this upload
    rows = {r.get_attribute("data-layer"): r.text for r in browser.find_elements(By.CSS_SELECTOR, "#arch tbody tr")}
    assert rows["features.block2.conv"].startswith("block 2 / conv Conv2d 8 x 8 x")
    browser.find_element(By.CSS_SELECTOR, "#arch tr[data-layer='features.block2.conv']").click()
    maps = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=feature-maps] figure"))
    assert len(maps) == 32 and "block 2 / conv" in browser.find_element(By.ID, "layer-view").text

    # clicking a map: its kernel (summed, and the first 3 input channels) and the sliding window
    maps[0].click()
    kernels = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=kernel] canvas"))
    assert len(kernels) == 4 and kernels[0].get_attribute("width") == "66"  # 3x3 cells of 22 px
    info = wait.until(lambda d: text(d, "[data-testid=patch-info]"))
    assert "position (4, 4) of 8x8" in info and "receptive field 8 px" in info
    unit_map = browser.find_element(By.ID, "unit-map")
    ActionChains(browser).move_to_element_with_offset(unit_map, -unit_map.size["width"] // 2 + 2,
                                                      -unit_map.size["height"] // 2 + 2).perform()
    wait.until(lambda d: "position (0, 0)" in text(d, "[data-testid=patch-info]"))
    patch = browser.find_element(By.CSS_SELECTOR, "[data-testid=patch]")
    assert "rows 0..4, columns 0..4" in text(browser, "[data-testid=patch-info]")
    assert patch.get_attribute("width") == "5"  # the 8-px field clipped at the image's edge
    assert not visible(browser, "error")
    if os.environ.get("CNNLAB_SCREENSHOT_DIR"):  # to look at the page
        browser.save_screenshot(str(Path(os.environ["CNNLAB_SCREENSHOT_DIR"]) / "serve_explainer.png"))


def test_a_failed_request_clears_the_results(service, browser, tmp_path, digit_png):
    from selenium.webdriver.common.by import By

    good, bad = tmp_path / "seven.png", tmp_path / "notes.png"
    good.write_bytes(digit_png)
    bad.write_bytes(b"not an image at all")
    wait = open_page(browser, service, "digits")
    browser.find_element(By.ID, "file").send_keys(str(good))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=top]")
               and d.find_elements(By.CSS_SELECTOR, "[data-testid=explainer-cam]"))
    assert browser.find_elements(By.CSS_SELECTOR, "[data-testid=seen]")
    browser.find_element(By.ID, "file").send_keys(str(bad))
    wait.until(lambda d: d.find_element(By.ID, "error").is_displayed())
    message = browser.find_element(By.ID, "error-text").text
    assert message.startswith("notes.png: not an image") and "415" not in message  # words, no HTTP code
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-testid=top], [data-testid=explainer-cam]"))
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid=seen]")
    assert browser.find_element(By.ID, "prediction").text == ""
