"""Headless Chromium driven by Selenium, for end-to-end tests of server-rendered pages.

`open_chromium` starts Debian's chromedriver and chromium (provisioned by devstack; never a
browser Selenium Manager would download) in a process group of their own, with a fresh profile,
and on exit stops every process of that group by PID. `axe_violations` runs axe-core (from
npm, see infra/browser) on the page the driver shows. `save_screenshot` keeps the whole page.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypedDict

from selenium.webdriver import Chrome, ChromeOptions, ChromeService

from devstack.chromium import AXE_SCRIPT, find_chromium
from devstack.processes import (
    StackError,
    child_pids,
    pid_alive,
    wait_for_exit,
    wait_until_reaped,
)

# Without these, Chromium on a machine with no network beyond the package registries tries to
# reach Google's services at every start (refused connections, failed look-ups, slow starts).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
DEFAULT_AXE_TAGS = ("wcag2a", "wcag2aa")
_EXIT_TIMEOUT = 10.0

_RUN_AXE = """
const [tags, done] = arguments;
axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]})
  .then(
    (results) => done({violations: results.violations.map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      targets: violation.nodes.map((node) => node.target),
    }))}),
    (error) => done({error: String(error)}),
  );
"""

# Through the CSSOM, which a page's Content-Security-Policy (style-src 'self') allows.
_HIDE_SCROLLBAR = 'document.documentElement.style.setProperty("scrollbar-width", "none")'
_SHOW_SCROLLBAR = 'document.documentElement.style.removeProperty("scrollbar-width")'


class AxeViolation(TypedDict):
    """One axe-core rule a page breaks, and the CSS selectors of the elements that break it."""

    id: str
    impact: str | None
    help: str
    targets: list[list[str]]


class OpenChromium(Protocol):
    """The `chromium_window` fixture: opens a headless window of that size, closed after the
    test."""

    def __call__(self, *, width: int, height: int) -> Chrome: ...


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (field 22 of /proc/<pid>/stat): with the PID it
    names one process, so a PID the kernel has since handed to another is never signalled."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[19]
    except (OSError, IndexError):
        return None


def _process_tree(root: int) -> dict[int, str]:
    """The root and all its descendants, each PID with its start time."""
    tree: dict[int, str] = {}
    pending = [root]
    while pending:
        pid = pending.pop()
        started = _start_time(pid)
        if started is not None and pid not in tree:
            tree[pid] = started
            pending.extend(child_pids(pid))
    return tree


def _kill_survivors(processes: dict[int, str], group: int) -> None:
    """SIGKILL what is left of a driver's processes (the recorded ones, if still the same
    process, and any other member of its process group), then wait until each recorded one is
    gone: Chromium's zygotes outlive the browser as zombies until init reaps them."""
    for pid, started in processes.items():
        if _start_time(pid) == started and pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # The group is chromedriver's own (start_new_session): its id stays ours while any member
    # lives, so this reaches a renderer that started after the snapshot and nothing else.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    for pid, started in processes.items():
        if not wait_for_exit(pid, _EXIT_TIMEOUT):
            raise StackError(f"browser process {pid} survived SIGKILL")
        if _start_time(pid) == started:  # a zombie: dead, and gone once init reaps it
            wait_until_reaped(pid, _EXIT_TIMEOUT)


@contextlib.contextmanager
def open_chromium(*, width: int, height: int) -> Iterator[Chrome]:
    """A headless Chromium window of width x height CSS pixels, driven through chromedriver.

    On exit the driver quits; then whatever chromedriver or chromium process still runs is
    killed by PID, and the temporary profile is removed.
    """
    binaries = find_chromium()
    if binaries is None:
        raise StackError("Chromium or ChromeDriver is missing: run `make provision`")
    # Selenium Manager only runs when a path is missing (never here); offline all the same.
    os.environ.setdefault("SE_OFFLINE", "true")
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    options = ChromeOptions()
    options.binary_location = str(binaries.browser)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    service = ChromeService(
        executable_path=str(binaries.driver), popen_kw={"start_new_session": True}
    )
    driver_pid: int | None = None
    try:
        driver = Chrome(options=options, service=service)
        driver_pid = service.process.pid
        try:
            # A headless window is never narrower than 500 px (375 gave a 485 px layout), so
            # the viewport itself is set to the size.
            metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            yield driver
        finally:
            processes = _process_tree(driver_pid)
            with contextlib.suppress(Exception):  # a crashed browser must not hide the test's error
                driver.quit()
            _kill_survivors(processes, driver_pid)
    finally:
        if driver_pid is None and getattr(service, "process", None) is not None:
            # Chromium failed to start: chromedriver may still run.
            _kill_survivors(_process_tree(service.process.pid), service.process.pid)
        shutil.rmtree(profile, ignore_errors=True)


def browser_pids(driver: Chrome) -> list[int]:
    """chromedriver's PID and those of every chromium process it started, while they run."""
    service = driver.service
    return [pid for pid in _process_tree(service.process.pid) if pid_alive(pid)]


def axe_violations(driver: Chrome, *, tags: Sequence[str] = DEFAULT_AXE_TAGS) -> list[AxeViolation]:
    """Inject axe-core into the current page and return the violations of the rules with these
    tags (WCAG 2 A and AA by default)."""
    if not AXE_SCRIPT.is_file():
        raise StackError(f"{AXE_SCRIPT} is missing: run `make provision` (npm ci in infra/browser)")
    driver.execute_script(AXE_SCRIPT.read_text(encoding="utf-8"))
    outcome: dict[str, Any] = driver.execute_async_script(_RUN_AXE, list(tags))
    if "error" in outcome:
        raise RuntimeError(f"axe.run failed: {outcome['error']}")
    violations: list[AxeViolation] = outcome["violations"]
    return violations


def save_screenshot(driver: Chrome, path: Path) -> Path:
    """Write a PNG of the whole page (its full height, at the window's width) to path.

    The page is laid out without a scrollbar while it is taken, as a phone's overlay scrollbars
    leave it: a capture beyond the viewport lays the page out again at the full width with no
    scrollbar, so a size measured with one (15 px narrower) cut off the page's right edge.
    """
    driver.execute_script(_HIDE_SCROLLBAR)
    try:
        metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        content = metrics["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": content["width"], "height": content["height"], "scale": 1}
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
    finally:
        driver.execute_script(_SHOW_SCROLLBAR)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
