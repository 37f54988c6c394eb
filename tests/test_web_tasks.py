"""The web page as a learner uses it, for every task, in headless Chromium against `cnnlab serve` with
small random-weight checkpoints (tests/web_checkpoints.py): upload, the controls, a second image.
Every result names the image on screen, maps are drawn at the shown image's size, a stale reply is
dropped, errors are words, and the browser logs no error. Screenshots go to a temporary folder, or to
docs/figures/ with CNNLAB_SCREENSHOT_DIR=docs/figures (how the docs' web_*.png were taken)."""
import os
import re
from pathlib import Path

import numpy as np
import pytest
from serving import CHROMEDRIVER, CHROMIUM, chromium, served  # tests/serving.py
from PIL import Image, ImageDraw

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip("Debian's chromium and chromium-driver are not installed "
                "(apt-get install -y chromium chromium-driver)", allow_module_level=True)
pytest.importorskip("selenium", reason="selenium is not installed (the test extra)")
pytest.importorskip("fastapi_offline", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402
import web_checkpoints  # noqa: E402  (tests/web_checkpoints.py)

WAIT_S = 90


def scene(path: Path, size=(96, 80), shift: int = 0) -> Path:
    """Shapes on grey, as the shapes data draws them: a red circle and a blue square."""
    img = Image.new("RGB", size, (200, 200, 200))
    d = ImageDraw.Draw(img)
    d.ellipse([10 + shift, 12, 44 + shift, 46], fill=(220, 40, 40))
    d.rectangle([52, 30 + shift // 2, 84, 62 + shift // 2], fill=(40, 70, 220))
    img.save(path)
    return path


RUNS: dict[str, Path] = {}  # the checkpoints the service holds, by name (for the tests' own computations)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    models = [web_checkpoints.classifier(folder, "rgb", (3, 16, 16), [0.5, 0.4, 0.3], [0.25, 0.2, 0.3]),
              web_checkpoints.classifier(folder, "digits", (1, 8, 8), [0.3], [0.4]),
              web_checkpoints.detector(folder), web_checkpoints.segmenter(folder), web_checkpoints.captioner(folder)]
    RUNS.update({Path(m).parent.name: Path(m) for m in models})
    with served(models, folder / "serve.log", WAIT_S) as url:
        yield url


@pytest.fixture(scope="module")
def browser(service, tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium"), "1920,1080", console=True)
    yield driver
    driver.quit()


def open_page(browser, service, model: str, width: int = 1920, height: int = 1080) -> WebDriverWait:
    browser.set_window_size(width, height)
    browser.get(service + "/")
    wait = WebDriverWait(browser, WAIT_S)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 5)
    Select(browser.find_element(By.ID, "model")).select_by_value(model)
    browser.get_log("browser")  # start each test with an empty log
    return wait


def js(browser, script: str, *args):
    return browser.execute_script(script, *args)


def named(browser) -> list[str]:
    """The image each result on the page says it is about."""
    return js(browser, "return [...document.querySelectorAll('[data-image]')].map(e => e.dataset.image)")


def text(browser, css: str) -> str:
    return js(browser, "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css)


def shown_size(browser, canvas_css: str) -> tuple[list[int], list[int]]:
    """(canvas width/height in pixels, the image under it as shown on screen)."""
    return js(browser, "const c = document.querySelector(arguments[0]), i = c.parentNode.querySelector('img');"
                       "const r = i.getBoundingClientRect();"
                       "return [[c.width, c.height], [Math.round(r.width), Math.round(r.height)]]", canvas_css)


def no_console_errors(browser) -> None:
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def broken_images(browser) -> list[str]:
    return js(browser, "return [...document.images].filter(i => i.offsetParent !== null && "
                       "!(i.complete && i.naturalWidth > 0)).map(i => i.id || i.alt)")


def screenshot(browser, name: str, tmp_path: Path, at: str | None = None) -> None:
    """The page as a PNG: into docs/figures/ when CNNLAB_SCREENSHOT_DIR names it (to refresh the docs'
    figures), else into a temporary folder, so a test run leaves the repository as it was. ``at``: a
    CSS selector to scroll to the top of the window (default: the page's top)."""
    folder = Path(os.environ.get("CNNLAB_SCREENSHOT_DIR") or tmp_path)
    path = folder / name
    if at:
        js(browser, "document.querySelector(arguments[0]).scrollIntoView()", at)
    else:
        js(browser, "window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(path))
    assert 10_000 < path.stat().st_size < 2_000_000


# ---------------------------------------------------------------------- classification
def test_classify_one_image_one_state_cam_over_the_shown_image(service, browser, tmp_path):
    first, second = scene(tmp_path / "first.png"), scene(tmp_path / "second.png", (120, 90), shift=14)
    wait = open_page(browser, service, "rgb")
    browser.find_element(By.ID, "file").send_keys(str(first))
    wait.until(lambda d: "first.png" in text(d, "[data-testid=explainer-cam] figcaption")
               and d.find_elements(By.CSS_SELECTOR, "[data-testid=top]"))
    assert set(named(browser)) == {"first.png"}
    size, shown = shown_size(browser, "canvas[data-testid=cam]")
    assert size == shown and shown[0] >= 320  # a 96-px upload is drawn at 320 px, the CAM over it
    row = js(browser, "const c = document.querySelector('canvas[data-testid=cam]');"
                      "const d = c.getContext('2d').getImageData(0, Math.floor(c.height / 2), c.width, 1).data;"
                      "return new Set(d.filter((v, i) => i % 4 == 3)).size")
    assert row > 32  # upsampled smoothly from the 16x16 the model saw, not drawn in 16 blocks
    assert "Grad-CAM" in text(browser, "[data-testid=legend]") and "block 3 / relu" in text(browser, "#cam-view")

    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid=top] .label")]
    Select(browser.find_element(By.ID, "cam-class")).select_by_value(labels[1])
    wait.until(lambda d: f'"{labels[1]}"' in text(d, "[data-testid=explainer-cam] figcaption"))
    Select(browser.find_element(By.ID, "cam-method")).select_by_value("saliency")
    wait.until(lambda d: "saliency" in text(d, "[data-testid=explainer-cam] figcaption"))
    layers = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#cam-layer option")]
    assert layers == ["block 1 / conv", "block 2 / conv", "block 3 / conv", "block 3 / relu (default)"]

    browser.find_element(By.CSS_SELECTOR, "#arch tr[data-layer='features.block2.conv']").click()
    maps = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=feature-maps] figure"))
    maps[0].click()
    wait.until(lambda d: text(d, "[data-testid=patch-info]"))

    browser.find_element(By.ID, "file").send_keys(str(second))  # a new image clears every result at once
    assert js(browser, "return document.getElementById('layer-view').children.length") == 0 or \
        set(named(browser)) <= {"second.png"}
    wait.until(lambda d: "second.png" in text(d, "[data-testid=explainer-cam] figcaption")
               and "second.png" in text(d, "#prediction"))
    assert set(named(browser)) == {"second.png"}
    size, shown = shown_size(browser, "canvas[data-testid=cam]")
    assert size == shown and shown[0] == 320 * 1 or shown[0] == round(320 * 120 / 120)
    assert broken_images(browser) == [] and not browser.find_element(By.ID, "error").is_displayed()
    screenshot(browser, "web_classify.png", tmp_path)
    no_console_errors(browser)


def test_network_overview_to_scale_and_one_value_written_out(service, browser, tmp_path):
    """CNN Explainer's views for the served model: every layer's maps for this image, drawn to scale,
    and a clicked map's value computed before the learner's eyes, checked here against the layers'
    own outputs (forward hooks on the checkpoint, loaded by the test itself)."""
    import torch

    import cnnlab

    photo = scene(tmp_path / "cells.png")
    wait = open_page(browser, service, "rgb")
    browser.find_element(By.ID, "file").send_keys(str(photo))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=overview] .softmax .soft-row"))
    cols = js(browser, "return [...document.querySelectorAll('[data-testid=overview] .layer-col')].map(c => [c.dataset.layer,"
                       "[...c.querySelectorAll('canvas')].map(x => [x.getBoundingClientRect().width, x.width])])")
    names = [c[0] for c in cols]
    assert names == ["input", *[f"features.block{b}.{k}" for b in (1, 2, 3) for k in ("conv", "relu", "pool")], "softmax"]
    widths = {name: maps for name, maps in cols}
    assert all(len(widths[n]) == 4 for n in names[1:-1])  # four maps per layer
    assert {w for w, _ in widths["features.block1.conv"]} == {96} and {w for w, _ in widths["features.block2.conv"]} == {48}
    assert {w for w, _ in widths["features.block3.pool"]} == {12}  # 16, 8 and 2 units wide: drawn to scale
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=top] .prob"))
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid=top] .label")]
    probs = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid=top] .prob")]
    soft = [(e.get_attribute("data-class"), e.find_element(By.CSS_SELECTOR, ".prob").text)
            for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid=softmax] .soft-row")]
    assert soft == list(zip(labels, probs))  # the softmax column is the prediction
    assert f'add most to "{labels[0]}"' in text(browser, "[data-testid=overview-note]")  # the predicted class's path

    # the layers' own numbers for this image, from the checkpoint
    lm = cnnlab.load(RUNS["rgb"], device="cpu")
    outs = {}
    for n in ("features.block1.pool", "features.block2.conv", "features.block2.norm", "features.block2.relu"):
        lm.model.get_submodule(n).register_forward_hook(lambda m, a, o, n=n: outs.__setitem__(n, o.detach().clone()[0]))
    with torch.no_grad():
        lm.model.eval()(lm.task.prepare(lm.read(photo)[None]))

    # click block 2's ReLU map: the value at its most active unit, from the conv's sum to the ReLU
    relu_map = browser.find_elements(By.CSS_SELECTOR, "[data-layer='features.block2.relu'] canvas")[1]
    channel = int(relu_map.get_attribute("data-channel"))
    relu_map.click()
    wait.until(lambda d: f"block 2 / conv, map #{channel}, position" in text(d, "[data-testid=conv-step] h3"))
    conv = outs["features.block2.conv"][channel]
    y, x = divmod(int(conv.argmax()), conv.shape[1])
    assert f"position ({y}, {x}) of 8x8" in text(browser, "[data-testid=conv-step] h3")
    assert text(browser, "[data-testid=unit-sum]").endswith(f"= {conv[y, x]:.4f}")
    assert f"= {outs['features.block2.norm'][channel, y, x]:.4f}" in text(browser, "[data-testid=unit-bn]")
    assert text(browser, "[data-testid=unit-relu]").endswith(f"= {outs['features.block2.relu'][channel, y, x]:.4f}")
    first = browser.find_element(By.CSS_SELECTOR, "[data-testid=product]")  # the biggest contribution first
    k = int(first.find_element(By.CSS_SELECTOR, ".muted").text.split()[-1])
    window = outs["features.block1.pool"][k, max(0, y - 1):y + 2, max(0, x - 1):x + 2]  # padding 1
    cells = [float(c.text) for c in first.find_elements(By.CSS_SELECTOR, "table.patch td") if c.text != "pad"]
    assert np.allclose(sorted(cells), sorted(window.flatten().tolist()), atol=0.006)  # the input patch, 2 decimals
    weights = lm.model.get_submodule("features.block2.conv").weight[channel, k].detach()
    shown = [float(c.text) for c in first.find_elements(By.CSS_SELECTOR, "table.weights td")]
    assert np.allclose(shown, weights.flatten().tolist(), atol=0.006)

    # slide the kernel one step; then a pool map: its window and the max
    browser.find_element(By.CSS_SELECTOR, "[data-testid=unit-next]").click()
    y2, x2 = divmod(y * 8 + x + 1, 8)
    wait.until(lambda d: f"position ({y2 % 8}, {x2}) of 8x8" in text(d, "[data-testid=conv-step] h3"))
    assert text(browser, "[data-testid=unit-sum]").endswith(f"= {conv[y2 % 8, x2]:.4f}")
    at = lambda d: [int(v) for v in re.search(r"position \((\d+), (\d+)\)", text(d, "[data-testid=conv-step] h3")).groups()]
    start = at(browser)
    browser.find_element(By.CSS_SELECTOR, "[data-testid=unit-play]").click()  # the kernel slides by itself
    wait.until(lambda d: at(d)[0] * 8 + at(d)[1] >= start[0] * 8 + start[1] + 3 or at(d) == [7, 7])
    js(browser, "document.querySelector('[data-testid=unit-play]').click()")  # stop (in one step: the view re-renders)
    stopped = at(browser)
    import time
    time.sleep(1.2)
    assert at(browser) in (stopped, [stopped[0] + (stopped[1] + 1) // 8, (stopped[1] + 1) % 8])  # (one reply in flight)
    y3, x3 = at(browser)
    assert text(browser, "[data-testid=unit-sum]").endswith(f"= {conv[y3, x3]:.4f}")
    pool = browser.find_elements(By.CSS_SELECTOR, "[data-layer='features.block1.pool'] canvas")[0]
    pool.click()
    wait.until(lambda d: "block 1 / pool" in text(d, "[data-testid=conv-step] h3"))
    assert text(browser, "[data-testid=unit-sum]").startswith("max(")
    from selenium.webdriver.support.ui import Select
    Select(browser.find_element(By.ID, "overview-order")).select_by_value("active")
    wait.until(lambda d: "the most active channels" in text(d, "[data-testid=overview-note]"))
    shown_channels = js(browser, "return [...document.querySelectorAll(\"[data-layer='features.block2.conv'] canvas\")]"
                                 ".map(c => Number(c.dataset.channel))")
    assert shown_channels == outs["features.block2.conv"].mean((1, 2)).topk(4).indices.tolist()
    assert set(named(browser)) == {"cells.png"} and not browser.find_element(By.ID, "error").is_displayed()
    Select(browser.find_element(By.ID, "overview-order")).select_by_value("class")  # back to the path, for the picture
    wait.until(lambda d: "predicted class's path" in text(d, "[data-testid=overview-note]"))
    relu_map = browser.find_elements(By.CSS_SELECTOR, "[data-layer='features.block2.relu'] canvas")[1]
    relu_map.click()  # back to the conv's arithmetic for the picture
    wait.until(lambda d: "block 2 / conv" in text(d, "[data-testid=conv-step] h3"))
    screenshot(browser, "web_network.png", tmp_path, at="#network-panel")
    no_console_errors(browser)


def test_first_slides_image_as_numbers_and_x_or_x(service, browser, tmp_path):
    """The Lincoln slide on the image on screen (point at a pixel: its numbers, as the file holds
    them) and "X or X?" (a feature-map value is the mean of the 9 products of its patch)."""
    from selenium.webdriver.common.action_chains import ActionChains

    from cnnlab.data.builtin.xo import XO_CLEAN, XO_FILTERS, XO_SHIFTED

    photo = scene(tmp_path / "lincoln.png")
    wait = open_page(browser, service, "boxes")  # any model: the slides need none
    browser.find_element(By.ID, "file").send_keys(str(photo))
    view = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "canvas[data-testid=pixels-image]"))[0]
    wait.until(lambda d: "score at least" in text(d, "[data-testid=rcnn-note-2]"))  # the page above has settled
    pixels = np.asarray(Image.open(photo))  # (80, 96, 3)
    w, h = int(view.get_attribute("width")), int(view.get_attribute("height"))
    for x, y in ((20, 25), (60, 40), (2, 77)):  # inside the circle, the square, the background
        ActionChains(browser).move_to_element_with_offset(view, (x + 0.5) * w / 96 - w / 2, (y + 0.5) * h / 80 - h / 2).perform()
        r, g, b = pixels[y, x]
        assert text(browser, "[data-testid=pixel-at]") == f"pixel (x {x}, y {y}) of 96x80: R {r}, G {g}, B {b}"
        assert text(browser, "[data-testid=pixel-grid] td.here") == str(r)  # the grid shows channel R around it
        grid = [[int(v) for v in row.split("\t")] for row in text(browser, "[data-testid=pixel-grid]").split("\n")]
        x0, y0 = max(0, min(96 - 12, x - 6)), max(0, min(80 - 10, y - 5))
        assert np.array_equal(np.array(grid), pixels[y0:y0 + 10, x0:x0 + 12, 0])  # the 10x12 numbers around it
    from selenium.webdriver.support.ui import Select
    Select(browser.find_element(By.ID, "pixel-channel")).select_by_visible_text("B")
    assert text(browser, "[data-testid=pixel-grid] td.here") == str(pixels[77, 2, 2])

    # X or X?: the shifted X under the crossing filter
    Select(browser.find_element(By.ID, "xo-image")).select_by_value("shifted X")
    Select(browser.find_element(By.ID, "xo-filter")).select_by_value("crossing")
    image = [[int(v) for v in row.split("\t")] for row in text(browser, "[data-testid=xo-image-grid]").split("\n")]
    assert np.array_equal(image, XO_SHIFTED) and not np.array_equal(image, XO_CLEAN)
    fmap = np.array([[float(v) for v in row.split("\t")] for row in text(browser, "[data-testid=xo-map]").split("\n")])
    f = XO_FILTERS["crossing"]
    want = np.array([[np.sum(XO_SHIFTED[r:r + 3, c:c + 3] * f) / 9 for c in range(7)] for r in range(7)])
    assert fmap.shape == (7, 7) and np.allclose(fmap, want, atol=0.005)  # by hand: the mean of 9 products
    relu = np.array([[float(v) for v in row.split("\t")] for row in text(browser, "[data-testid=xo-relu]").split("\n")])
    assert np.allclose(relu, np.maximum(want, 0), atol=0.005)
    pooled = np.array([[float(v) for v in row.split("\t")] for row in text(browser, "[data-testid=xo-pooled]").split("\n")])
    padded = np.pad(np.maximum(want, 0), ((0, 1), (0, 1)), constant_values=-np.inf)
    assert np.allclose(pooled, padded.reshape(4, 2, 4, 2).max((1, 3)), atol=0.005)
    ActionChains(browser).move_to_element(browser.find_element(By.CSS_SELECTOR, "[data-testid=xo-map] td[data-rc='2,3']")).perform()
    total = int(np.sum(XO_SHIFTED[2:5, 3:6] * f))
    assert f"= {total} / 9 = {total / 9:.2f} · the map holds {want[2, 3]:.2f}" in text(browser, "[data-testid=xo-sum]")
    patch = js(browser, "return [...document.querySelectorAll('[data-testid=xo-image-grid] td.patch-on')].map(t => t.dataset.rc)")
    assert sorted(patch) == sorted(f"{r},{c}" for r in range(2, 5) for c in range(3, 6))
    assert "differs from the clean X in 16 of 81 pixels" in text(browser, "#xo-view")
    assert "local features survive a shift" in text(browser, "#xo-view")
    assert set(named(browser)) == {"lincoln.png"}
    Select(browser.find_element(By.ID, "pixel-channel")).select_by_visible_text("R")
    ActionChains(browser).move_to_element_with_offset(view, 45 * w / 96 - w / 2, 22 * h / 80 - h / 2).perform()  # the circle's edge
    screenshot(browser, "web_slides.png", tmp_path, at="#slides-panel")
    no_console_errors(browser)


def test_a_stale_reply_is_dropped(service, browser, tmp_path):
    slow, fast = scene(tmp_path / "slow.png"), scene(tmp_path / "fast.png", shift=20)
    wait = open_page(browser, service, "rgb")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#cam-layer option"))
    js(browser, """  // every reply about slow.png arrives 3 s late: after fast.png's
      window.lateReplies = 0;
      const fetch0 = window.fetch;
      window.fetch = async (url, init) => {
        const file = init && init.body instanceof FormData ? init.body.get("file") : null;
        const reply = await fetch0(url, init);
        if (file && file.name === "slow.png") { await new Promise(r => setTimeout(r, 3000)); window.lateReplies += 1; }
        return reply;
      };""")
    browser.find_element(By.ID, "file").send_keys(str(slow))
    wait.until(lambda d: d.execute_script("return document.getElementById('preview-name').innerText").startswith("slow.png"))
    browser.find_element(By.ID, "file").send_keys(str(fast))
    wait.until(lambda d: d.execute_script("return window.lateReplies") >= 2)  # predict and inspect (convolve waits 0.3 s: never sent)
    wait.until(lambda d: "fast.png" in text(d, "[data-testid=explainer-cam] figcaption"))
    assert set(named(browser)) == {"fast.png"}
    assert js(browser, "return state.dropped") >= 2
    no_console_errors(browser)


def test_errors_are_words_in_place_dismissible_and_cleared(service, browser, tmp_path):
    good, bad = scene(tmp_path / "good.png"), tmp_path / "notes.png"
    bad.write_bytes(b"not an image at all")
    wait = open_page(browser, service, "rgb")
    browser.find_element(By.ID, "file").send_keys(str(good))
    wait.until(lambda d: "good.png" in text(d, "[data-testid=explainer-cam] figcaption"))
    browser.find_element(By.ID, "file").send_keys(str(bad))
    wait.until(lambda d: d.find_element(By.ID, "error").is_displayed())
    message = browser.find_element(By.ID, "error-text").text
    assert "notes.png" in message and "not" in message and not re.match(r"\d{3}", message), message
    assert js(browser, "return getComputedStyle(document.getElementById('error')).position") == "static"
    assert named(browser) == [] and broken_images(browser) == []  # nothing from good.png, no broken icon
    assert "cannot show" in browser.find_element(By.ID, "no-image").text
    browser.find_element(By.ID, "error-close").click()
    assert not browser.find_element(By.ID, "error").is_displayed()

    js(browser, "showError('an old error')")  # the next good result clears an error still up
    browser.find_element(By.ID, "file").send_keys(str(good))
    wait.until(lambda d: "good.png" in text(d, "#prediction"))
    assert not browser.find_element(By.ID, "error").is_displayed()
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert all("415" in m for m in errors), errors  # only the refused upload's own 415, logged by Chromium


def test_layout_full_width_at_1920_one_column_at_420(service, browser, tmp_path):
    photo = scene(tmp_path / "photo.png")
    wait = open_page(browser, service, "rgb")
    browser.find_element(By.ID, "file").send_keys(str(photo))
    wait.until(lambda d: "photo.png" in text(d, "[data-testid=explainer-cam] figcaption"))
    right = js(browser, "return Math.max(...[...document.querySelectorAll('.panel')].map(p => p.getBoundingClientRect().right))")
    assert right > 1850  # the panels reach across a 1920-px screen
    browser.set_window_size(420, 900)
    wait.until(lambda d: d.execute_script("return window.innerWidth") <= 420)
    lefts = js(browser, "return [...document.querySelectorAll('.panel')].filter(p => p.offsetParent)"
                        ".map(p => Math.round(p.getBoundingClientRect().left))")
    assert len(set(lefts)) == 1, lefts  # one column
    assert js(browser, "return document.documentElement.scrollWidth <= window.innerWidth")
    no_console_errors(browser)


# ---------------------------------------------------------------------- the drawing pad
def test_drawing_pad_makes_an_mnist_like_digit(service, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from scipy import ndimage

    wait = open_page(browser, service, "digits", 1400, 1000)
    pad = browser.find_element(By.ID, "pad")  # 180x180 on screen: a 7 in the upper left quarter, drawn small
    ActionChains(browser).move_to_element_with_offset(pad, -70, -70).click_and_hold() \
        .move_by_offset(40, 0).move_by_offset(-25, 60).release().perform()
    ink = np.array(js(browser, "const c = document.getElementById('pad');"
                               "return [...c.getContext('2d').getImageData(0, 0, c.width, c.height).data]"
                               ".filter((v, i) => i % 4 == 0)"), dtype=np.float64).reshape(280, 280)
    browser.find_element(By.ID, "use-drawing").click()
    wait.until(lambda d: "drawing.png" in text(d, "#prediction"))
    got = np.array(js(browser, "const i = document.getElementById('preview'), c = document.createElement('canvas');"
                               "c.width = i.naturalWidth; c.height = i.naturalHeight;"
                               "const x = c.getContext('2d'); x.drawImage(i, 0, 0);"
                               "return [...x.getImageData(0, 0, c.width, c.height).data].filter((v, k) => k % 4 == 0)"),
                   dtype=np.float64).reshape(8, 8)
    # the reference, as MNIST was made: crop to the ink, scale the longer side to the box (the whole
    # 8-px frame here, as scikit-learn's digits fill theirs) with area averaging, centre by mass
    ys, xs = np.nonzero(ink)
    crop = Image.fromarray(ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.uint8))
    s = 8 / max(crop.size)
    small = np.asarray(crop.resize((max(1, round(crop.width * s)), max(1, round(crop.height * s))), Image.BOX), float)
    cy, cx = ndimage.center_of_mass(small)
    want = np.zeros((8, 8))
    top = int(np.clip(np.floor(3.5 - cy + 0.5), 0, 8 - small.shape[0]))  # as far as the frame allows
    left = int(np.clip(np.floor(3.5 - cx + 0.5), 0, 8 - small.shape[1]))
    want[top:top + small.shape[0], left:left + small.shape[1]] = small * 255 / small.max()
    assert got.max() == 255 and np.abs(got - want).max() <= 12, (got, want)
    assert np.count_nonzero(got.max(1) > 0) == 8  # the 7 fills the frame's height, drawn small as it was
    assert "input 1x8x8" in browser.find_element(By.ID, "model-info").text
    no_console_errors(browser)


# ---------------------------------------------------------------------- detection, segmentation, captioning
def test_detect_boxes_on_the_shown_image_threshold_slider_and_table(service, browser, tmp_path):
    first, second = scene(tmp_path / "shapes.png"), scene(tmp_path / "more_shapes.png", (128, 96), shift=24)
    wait = open_page(browser, service, "boxes")
    browser.find_element(By.ID, "file").send_keys(str(first))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "canvas[data-testid=boxes]"))
    size, shown = shown_size(browser, "canvas[data-testid=boxes]")
    assert size == shown and shown[0] >= 320

    def set_slider(value):
        js(browser, "const s = document.getElementById('score-threshold'); s.value = arguments[0];"
                    "s.dispatchEvent(new Event('input'))", value)
        rows = len(browser.find_elements(By.CSS_SELECTOR, "[data-testid=box-table] tbody tr"))
        drawn = int(js(browser, "return document.querySelector('canvas[data-testid=boxes]').dataset.boxes"))
        assert rows == drawn
        return rows

    everything = set_slider(0.05)
    assert everything > 1, "the random detector proposes boxes above 0.05"
    scores = sorted(float(e.text) for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid=box-table] td:nth-child(3)"))
    middle = round(scores[len(scores) // 2], 3)  # the slider moves in steps of 0.001
    assert scores[0] < middle  # the table lists them all, with different scores
    assert set_slider(middle) == sum(s >= middle for s in scores) < everything  # filtered live, no request
    assert f"score at least {middle:.3f}" in text(browser, "[data-testid=box-count]")
    set_slider(0.05)

    # the R-CNN story on this image: proposals -> every scored region -> after NMS
    wait.until(lambda d: "score at least 0.050" in text(d, "[data-testid=rcnn-note-2]"))
    drawn = lambda i: int(js(browser, f"return document.querySelector('canvas[data-testid=rcnn-step-{i}]').dataset.boxes"))
    for i in (1, 2, 3):
        size, shown_at = shown_size(browser, f"canvas[data-testid=rcnn-step-{i}]")
        assert size == shown_at
    assert drawn(1) == 10 and "top 10 regions" in text(browser, "[data-testid=rcnn-note-1]")  # the proposals option
    assert drawn(3) == everything  # step 3 is the detections
    replies = browser.execute_async_script("""const done = arguments[arguments.length - 1];
        const ask = (nms) => fetch('/v1/predict', { method: 'POST', body: imageForm({ options: JSON.stringify(
          { ...optionValues(), nms_iou: nms }) }) }).then(x => x.json());
        Promise.all([ask(1.0), ask(0.5)]).then(done);""")
    before, after = ([(d["class"], d["score"], tuple(d["box"])) for d in reply["detections"]] for reply in replies)
    assert drawn(2) == len(before) and len(after) == everything
    # the head keeps its 100 best per image: above the 100th scored region's score both lists are whole
    cut = round(min(s for _, s, _ in before) + 0.0015, 3)
    before, after = [d for d in before if d[1] >= cut], [d for d in after if d[1] >= cut]
    assert set(after) <= set(before) and len(after) < len(before)  # NMS only removed boxes: overlapping ones

    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)

    assert all(iou(a[2], b[2]) <= 0.5 + 0.02 for i, a in enumerate(after) for b in after[i + 1:] if a[0] == b[0])
    set_slider(cut)
    assert (drawn(2), drawn(3)) == (len(before), len(after))
    assert f"{len(before)} score at least {cut:.3f}" in text(browser, "[data-testid=rcnn-note-2]")
    screenshot(browser, "web_detect.png", tmp_path)
    screenshot(browser, "web_rcnn.png", tmp_path, at="[data-testid=rcnn-story]")
    set_slider(0.05)
    browser.find_element(By.ID, "file").send_keys(str(second))
    wait.until(lambda d: "more_shapes.png" in text(d, "#prediction") and d.find_elements(By.CSS_SELECTOR, "canvas[data-testid=boxes]"))
    assert set(named(browser)) == {"more_shapes.png"}
    size, shown = shown_size(browser, "canvas[data-testid=boxes]")
    assert size == shown
    wait.until(lambda d: "score at least" in text(d, "[data-testid=rcnn-note-2]"))
    assert "more_shapes.png" in text(browser, "[data-testid=rcnn-story] h3")
    no_console_errors(browser)


def scene_mask(path: Path, size=(96, 80), shift: int = 0) -> Path:
    """``scene``'s ground truth as a PNG of class ids: 0 background, 1 circle, 2 square."""
    img = Image.new("L", size, 0)
    d = ImageDraw.Draw(img)
    d.ellipse([10 + shift, 12, 44 + shift, 46], fill=1)
    d.rectangle([52, 30 + shift // 2, 84, 62 + shift // 2], fill=2)
    img.save(path)
    return path


def data_url_pixels(url: str) -> np.ndarray:
    import base64
    import io

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_segment_mask_over_the_shown_image_opacity_toggles_hover(service, browser, tmp_path):
    first, second = scene(tmp_path / "street.png"), scene(tmp_path / "street2.png", (64, 64), shift=6)
    wait = open_page(browser, service, "scenes")
    browser.find_element(By.ID, "file").send_keys(str(first))
    canvas = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "canvas[data-testid=mask]"))[0]
    size, shown = shown_size(browser, "canvas[data-testid=mask]")
    assert size == shown and shown[0] >= 320

    def alphas():
        return js(browser, "const c = document.querySelector('canvas[data-testid=mask]');"
                           "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                           "return [...new Set(d.filter((v, i) => i % 4 == 3))].sort((a, b) => a - b)")

    assert alphas() == [128]  # every pixel has a class, at the default opacity 0.5
    js(browser, "const s = document.getElementById('mask-opacity'); s.value = 0.8; s.dispatchEvent(new Event('input'))")
    assert alphas() == [204]
    present = [e.get_attribute("data-class") for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid=mask-legend] input")
               if not e.find_element(By.XPATH, "..").get_attribute("class")]
    for name in present:  # toggle off every class present: nothing is drawn
        browser.find_element(By.CSS_SELECTOR, f"[data-testid=mask-legend] input[data-class='{name}']").click()
    assert alphas() == [0]

    # hover: the class and its probability at that pixel, as the service computed them
    m = browser.execute_async_script("const done = arguments[arguments.length - 1];"
                                     "fetch('/v1/mask', { method: 'POST', body: imageForm() }).then(x => x.json()).then(done);")
    ids, prob = data_url_pixels(m["mask"]), data_url_pixels(m["probability"])
    assert ids.shape == prob.shape == (80, 96) and prob.min() >= 255 // len(m["classes"])  # the winner's p >= 1/K
    from selenium.webdriver.common.action_chains import ActionChains
    for x, y in ((3, 3), (80, 60)):
        sx, sy = (x + 0.5) * shown[0] / 96, (y + 0.5) * shown[1] / 80
        ActionChains(browser).move_to_element_with_offset(canvas, sx - shown[0] / 2, sy - shown[1] / 2).perform()
        assert text(browser, "[data-testid=mask-hover]") == \
            f"({x}, {y}): {m['classes'][ids[y, x]]}, p = {prob[y, x] / 255:.2f}"

    # the image's ground truth dropped too: IoU per class of this image, computed by hand here
    truth = scene_mask(tmp_path / "street_mask.png")
    browser.find_element(By.ID, "truth-file").send_keys(str(truth))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=iou-table] tbody tr"))
    gt = np.asarray(Image.open(truth))
    for k, name in enumerate(m["classes"]):
        union = np.sum((gt == k) | (ids == k))
        want = f"{100 * np.sum((gt == k) & (ids == k)) / union:.1f}%" if union else "-"
        assert text(browser, f"[data-testid=iou-table] tr[data-class='{name}'] .iou") == want, name
    assert "street.png against street_mask.png: mean IoU" in text(browser, "[data-testid=miou]")
    assert f"pixel accuracy {100 * np.mean(gt == ids):.1f}%" in text(browser, "[data-testid=miou]")
    bad = tmp_path / "wrong_mask.png"
    Image.fromarray(np.full((10, 96), 7, np.uint8)).save(bad)  # another aspect ratio
    browser.find_element(By.ID, "truth-file").send_keys(str(bad))
    wait.until(lambda d: d.find_element(By.ID, "error").is_displayed())
    assert "wrong_mask.png is 96x10 but image street.png is 96x80" in browser.find_element(By.ID, "error-text").text
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid=iou-table]")  # no stale IoU left under the error
    browser.get_log("browser")  # Chromium logs the refused request's 422 itself

    browser.find_element(By.ID, "file").send_keys(str(second))
    wait.until(lambda d: "street2.png" in text(d, "#prediction") and d.find_elements(By.CSS_SELECTOR, "canvas[data-testid=mask]"))
    assert set(named(browser)) == {"street2.png"}
    assert not browser.find_element(By.ID, "error").is_displayed()
    size, shown = shown_size(browser, "canvas[data-testid=mask]")
    assert size == shown and shown == [320, 320]  # a 64x64 image, enlarged
    browser.find_element(By.ID, "truth-file").send_keys(str(scene_mask(tmp_path / "street2_mask.png", (64, 64), shift=6)))
    wait.until(lambda d: "street2.png against street2_mask.png" in text(d, "[data-testid=miou]"))
    screenshot(browser, "web_segment.png", tmp_path)

    # both files dropped at once (the mask first): the image is shown, the mask scored against it
    import base64
    third, third_mask = scene(tmp_path / "street3.png", shift=3), scene_mask(tmp_path / "street3_mask.png", shift=3)
    js(browser, """const mk = (b64, name) => new File([Uint8Array.from(atob(b64), c => c.charCodeAt(0))], name, { type: 'image/png' });
        const dt = new DataTransfer();
        dt.items.add(mk(arguments[1], 'street3_mask.png'));
        dt.items.add(mk(arguments[0], 'street3.png'));
        document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));""",
       base64.b64encode(third.read_bytes()).decode(), base64.b64encode(third_mask.read_bytes()).decode())
    wait.until(lambda d: "street3.png against street3_mask.png" in text(d, "[data-testid=miou]"))
    assert browser.find_element(By.ID, "preview-name").text.startswith("street3.png") and set(named(browser)) == {"street3.png"}
    no_console_errors(browser)


def test_caption_words_and_attention(service, browser, tmp_path):
    first, second = scene(tmp_path / "one.png"), scene(tmp_path / "two.png", shift=20)
    wait = open_page(browser, service, "captions")
    beam = browser.find_element(By.ID, "option-beam")
    beam.clear()
    beam.send_keys("1")  # greedy decoding: the random captioner's first words
    browser.find_element(By.ID, "file").send_keys(str(first))
    wait.until(lambda d: "one.png" in text(d, "#prediction") and d.find_elements(By.CSS_SELECTOR, "[data-testid=caption]"))
    assert browser.find_elements(By.CSS_SELECTOR, "[data-testid=attention-figure] img")  # a show-attend-tell model
    words = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid=caption] .word")]
    assert len(words) >= 2, words

    # the same request the page made, answered again: each word's (h, w) attention grid
    r = browser.execute_async_script("""const done = arguments[arguments.length - 1];
        const form = imageForm({ options: JSON.stringify(optionValues()) });
        fetch('/v1/predict', { method: 'POST', body: form }).then(x => x.json()).then(done);""")
    assert r["words"] == words and len(r["word_attention"]) == len(words)
    grids = [np.array(g) for g in r["word_attention"]]
    assert all(g.shape == tuple(r["grid"]) and abs(g.sum() - 1) < 1e-3 for g in grids)

    def drawn(i):
        """Word i pointed at: its map drawn over the image at the image's shown size; the map's
        opacity at the centre of its strongest and its weakest cell."""
        browser.find_element(By.CSS_SELECTOR, f"[data-testid=caption] .word[data-word='{i}']").click()
        wait.until(lambda d: d.execute_script("const c = document.querySelector('canvas[data-testid=attention]');"
                                              "return c && c.dataset.word") == str(i))
        wait.until(lambda d: f'"{words[i]}" (word {i + 1} of' in text(d, "[data-testid=attention-view] figcaption"))
        size, shown = shown_size(browser, "canvas[data-testid=attention]")
        assert size == shown and shown[0] >= 320
        g = grids[i]
        hi, lo = np.unravel_index(g.argmax(), g.shape), np.unravel_index(g.argmin(), g.shape)
        centre = lambda cell: [int((cell[1] + 0.5) * size[0] / g.shape[1]), int((cell[0] + 0.5) * size[1] / g.shape[0])]
        return g, wait.until(lambda d: d.execute_script(
            "const c = document.querySelector('canvas[data-testid=attention]'), x = c.getContext('2d');"
            "const a = (p) => x.getImageData(p[0], p[1], 1, 1).data[3];"
            "const v = [a(arguments[0]), a(arguments[1])]; return v[0] > 0 ? v : null", centre(hi), centre(lo)))

    for i in (0, 1):
        g, (at_max, at_min) = drawn(i)
        assert at_max == round(0.8 * 255) or at_max >= 200  # the strongest cell: full weight, drawn at 0.8 opacity
        assert at_min <= at_max * g.min() / g.max() + 12  # the weakest: in proportion to its weight
    hover = browser.find_element(By.CSS_SELECTOR, "canvas[data-testid=attention]")
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(browser).move_to_element_with_offset(hover, -hover.size["width"] // 2 + 2, -hover.size["height"] // 2 + 2).perform()
    assert f"cell (0, 0) of the {r['grid'][0]}x{r['grid'][1]} grid: weight {grids[1][0, 0]:.4f}" in \
        text(browser, "[data-testid=attention-hover]")

    browser.find_element(By.ID, "file").send_keys(str(second))
    wait.until(lambda d: "two.png" in text(d, "#prediction") and d.find_elements(By.CSS_SELECTOR, "[data-testid=caption]"))
    wait.until(lambda d: "two.png" in text(d, "[data-testid=attention-view] figcaption"))
    assert set(named(browser)) == {"two.png"} and broken_images(browser) == []
    screenshot(browser, "web_caption.png", tmp_path)
    no_console_errors(browser)
