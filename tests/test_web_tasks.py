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


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    models = [web_checkpoints.classifier(folder, "rgb", (3, 16, 16), [0.5, 0.4, 0.3], [0.25, 0.2, 0.3]),
              web_checkpoints.classifier(folder, "digits", (1, 8, 8), [0.3], [0.4]),
              web_checkpoints.detector(folder), web_checkpoints.segmenter(folder), web_checkpoints.captioner(folder)]
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


def screenshot(browser, name: str, tmp_path: Path) -> None:
    """The page as a PNG: into docs/figures/ when CNNLAB_SCREENSHOT_DIR names it (to refresh the docs'
    figures), else into a temporary folder, so a test run leaves the repository as it was."""
    folder = Path(os.environ.get("CNNLAB_SCREENSHOT_DIR") or tmp_path)
    path = folder / name
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
    browser.find_element(By.ID, "file").send_keys(str(second))
    wait.until(lambda d: "more_shapes.png" in text(d, "#prediction") and d.find_elements(By.CSS_SELECTOR, "canvas[data-testid=boxes]"))
    assert set(named(browser)) == {"more_shapes.png"}
    size, shown = shown_size(browser, "canvas[data-testid=boxes]")
    assert size == shown
    screenshot(browser, "web_detect.png", tmp_path)
    no_console_errors(browser)


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
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(browser).move_to_element_with_offset(canvas, 5, 5).perform()
    assert any(f": {name}" in text(browser, "[data-testid=mask-hover]") for name in present)

    browser.find_element(By.ID, "file").send_keys(str(second))
    wait.until(lambda d: "street2.png" in text(d, "#prediction") and d.find_elements(By.CSS_SELECTOR, "canvas[data-testid=mask]"))
    assert set(named(browser)) == {"street2.png"}
    size, shown = shown_size(browser, "canvas[data-testid=mask]")
    assert size == shown and shown == [320, 320]  # a 64x64 image, enlarged
    screenshot(browser, "web_segment.png", tmp_path)
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
    browser.find_element(By.ID, "file").send_keys(str(second))
    wait.until(lambda d: "two.png" in text(d, "#prediction") and d.find_elements(By.CSS_SELECTOR, "[data-testid=caption]"))
    assert set(named(browser)) == {"two.png"} and broken_images(browser) == []
    screenshot(browser, "web_caption.png", tmp_path)
    no_console_errors(browser)
