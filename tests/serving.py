"""`cnnlab serve` as a real process on a free loopback port, for the browser tests."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(args: list[str], log_path: Path, wait_s: float, poll_s: float = 0.3):
    """``cnnlab serve ARGS --port P --device cpu`` started, its base URL once /healthz answers, then
    stopped; the test fails with the end of the server's log if it exits or does not answer in time."""
    port = free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "serve", *map(str, args), "--port", str(port),
                                 "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    urllib.request.urlopen(url + "/healthz", timeout=2).read()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"cnnlab serve did not start: {Path(log_path).read_text()[-2000:]}")
                    time.sleep(poll_s)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"  # Debian's packages


def chromium(profile: Path, size: str, console: bool = False):
    """Headless Debian Chromium driven by Selenium, its profile in ``profile``, its window ``size``
    ("W,H"); ``console``: keep the browser's console messages (driver.get_log("browser"))."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--window-size={size}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if console:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
