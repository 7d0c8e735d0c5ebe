"""The headless-Chromium harness on two tiny static pages served from 127.0.0.1: Selenium
clicks and presses keys, axe-core finds known violations (and none on an accessible page), the
viewport has the asked width, and no browser process outlives its window."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from matplotlib.image import imread
from selenium.webdriver import ActionChains, Keys
from selenium.webdriver.common.by import By

from common_core.testing.browser import (
    OpenChromium,
    axe_violations,
    browser_pids,
    open_chromium,
    save_screenshot,
)
from devstack.chromium import ChromiumBinaries
from devstack.processes import pid_alive

pytestmark = pytest.mark.integration

ACCESSIBLE_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Harness check</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main>
<h1>Harness check</h1>
<button id="advance" type="button">Waiting</button>
</main>
<script>
const button = document.getElementById("advance");
button.addEventListener("click", () => { button.textContent = "Clicked"; });
document.addEventListener("keydown", (event) => {
  if (event.key === "ArrowRight") { button.textContent = "Next"; }
});
</script>
</body>
</html>
"""
# An image without alt text and a text field without a label: axe-core's `image-alt` and `label`.
INACCESSIBLE_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Broken on purpose</title></head>
<body><main>
<h1>Broken on purpose</h1>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="20" height="20">
<input type="text" name="essay_title">
</main></body>
</html>
"""
# Taller than its window (a vertical scrollbar), a red right border at the page's right edge.
TALL_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Tall</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="margin: 0">
<div style="box-sizing: border-box; height: 2000px; border-right: 4px solid #ff0000"></div>
</body>
</html>
"""
PAGES = {"/accessible": ACCESSIBLE_PAGE, "/inaccessible": INACCESSIBLE_PAGE, "/tall": TALL_PAGE}


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        page = PAGES.get(self.path)
        body = (page or "not found").encode()
        self.send_response(200 if page else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test output is the assertions."""


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The base URL of an HTTP server on 127.0.0.1 serving PAGES, in a thread of this process."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, name="browser-harness-pages")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class TestDrivingAPage:
    def test_a_click_and_an_arrow_right_key_change_the_button(
        self, site: str, chromium_window: OpenChromium
    ) -> None:
        driver = chromium_window(width=1024, height=768)
        driver.get(f"{site}/accessible")
        button = driver.find_element(By.ID, "advance")
        assert button.text == "Waiting"

        button.click()
        assert button.text == "Clicked"

        ActionChains(driver).send_keys(Keys.ARROW_RIGHT).perform()
        assert button.text == "Next"

    def test_a_375_pixel_window_lays_the_page_out_at_most_375_pixels_wide(
        self, site: str, chromium_window: OpenChromium
    ) -> None:
        driver = chromium_window(width=375, height=667)
        driver.get(f"{site}/accessible")

        width = driver.execute_script("return document.documentElement.clientWidth")

        assert 0 < width <= 375


class TestScreenshot:
    def test_a_page_taller_than_a_375_pixel_window_is_saved_whole_with_its_right_edge(
        self, site: str, chromium_window: OpenChromium, tmp_path: Path
    ) -> None:
        driver = chromium_window(width=375, height=667)
        driver.get(f"{site}/tall")

        pixels = imread(save_screenshot(driver, tmp_path / "tall.png"))  # rows of RGB(A) in 0..1
        width_after = driver.execute_script("return document.documentElement.clientWidth")

        assert pixels.shape[:2] == (2000, 375)
        assert pixels[1000, 373, :3].tolist() == [1.0, 0.0, 0.0]
        assert pixels[1000, 370, :3].tolist() == [1.0, 1.0, 1.0]
        assert width_after < 375  # the page's own scrollbar is back


class TestAxe:
    def test_axe_names_the_missing_alt_text_and_label_and_passes_the_accessible_page(
        self, site: str, chromium_window: OpenChromium
    ) -> None:
        driver = chromium_window(width=1024, height=768)

        driver.get(f"{site}/inaccessible")
        violations = {violation["id"]: violation for violation in axe_violations(driver)}
        driver.get(f"{site}/accessible")
        accessible_page_violations = axe_violations(driver)

        assert {"image-alt", "label"} <= violations.keys()
        assert violations["image-alt"]["targets"] == [["img"]]
        assert violations["label"]["targets"] == [["input"]]
        assert violations["image-alt"]["impact"] == "critical"
        assert accessible_page_violations == []


class TestCleanUp:
    def test_no_chromedriver_or_chromium_process_outlives_the_window(
        self, site: str, chromium_ready: ChromiumBinaries
    ) -> None:
        with open_chromium(width=800, height=600) as driver:
            driver.get(f"{site}/accessible")
            pids = browser_pids(driver)
            group = pids[0]  # chromedriver leads a process group of its own
            commands = [os.readlink(f"/proc/{pid}/exe") for pid in pids]

        assert commands[0] == str(chromium_ready.driver.resolve())
        assert any(command.endswith("/chromium") for command in commands[1:])
        assert [pid for pid in pids if pid_alive(pid)] == []
        with pytest.raises(ProcessLookupError):
            os.killpg(group, 0)
