"""Headless Chromium for the browser tests: Debian's chromium and chromium-driver packages, and
axe-core (the accessibility checker the tests inject into pages) from the npm registry.

Never a browser from anywhere else: Selenium is pointed at these binaries, so Selenium Manager
has nothing to download.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from devstack.processes import StackError, run, say, stopwatch

CHROMIUM_PACKAGES = ("chromium", "chromium-driver")
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
DEBIAN_CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The npm project that pins axe-core (package.json + package-lock.json, installed with `npm ci`).
BROWSER_TOOLS_DIR = Path(__file__).resolve().parents[1] / "browser"
AXE_SCRIPT = BROWSER_TOOLS_DIR / "node_modules" / "axe-core" / "axe.min.js"


@dataclass(frozen=True)
class ChromiumBinaries:
    """Where the browser and its WebDriver server are installed."""

    browser: Path
    driver: Path


def _installed(debian_path: Path, name: str) -> Path | None:
    if debian_path.is_file():
        return debian_path
    found = shutil.which(name)
    return Path(found) if found else None


def find_chromium() -> ChromiumBinaries | None:
    """Chromium and ChromeDriver (Debian's paths first, then PATH), when both are installed."""
    browser = _installed(DEBIAN_CHROMIUM, "chromium")
    driver = _installed(DEBIAN_CHROMEDRIVER, "chromedriver")
    if browser is None or driver is None:
        return None
    return ChromiumBinaries(browser, driver)


def provision_chromium() -> ChromiumBinaries:
    """Return Chromium and ChromeDriver, installing Debian's packages when root."""
    binaries = find_chromium()
    if binaries is not None:
        return binaries
    packages = " ".join(CHROMIUM_PACKAGES)
    install = f"apt-get update && apt-get install -y {packages}"
    if os.geteuid() != 0:
        raise StackError(
            f"Chromium or ChromeDriver not found (looked for {DEBIAN_CHROMIUM}, "
            f"{DEBIAN_CHROMEDRIVER} and both on PATH): run `sudo sh -c '{install}'`"
        )
    say("Chromium not found; installing it with apt-get ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with stopwatch() as elapsed:
        run(["apt-get", "update"], what="apt-get update", env=env)
        run(
            ["apt-get", "install", "-y", *CHROMIUM_PACKAGES],
            what=f"apt-get install {packages}",
            env=env,
        )
    binaries = find_chromium()
    if binaries is None:
        raise StackError(f"installed {packages} but found no {DEBIAN_CHROMIUM} and chromedriver")
    say(f"installed Chromium ({binaries.browser}, {binaries.driver}) in {elapsed()}")
    return binaries


def provision_axe_core() -> Path:
    """Return axe.min.js, running `npm ci` in infra/browser when it is missing (offline after)."""
    if AXE_SCRIPT.is_file():
        return AXE_SCRIPT
    npm = shutil.which("npm")
    if npm is None:
        raise StackError(
            "npm not found (needed once to install axe-core for the browser tests): run "
            f"`sudo sh -c 'apt-get update && apt-get install -y npm'`, then `npm ci` in "
            f"{BROWSER_TOOLS_DIR}"
        )
    say(f"axe-core not found; installing it with npm ci in {BROWSER_TOOLS_DIR} ...")
    with stopwatch() as elapsed:
        command = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"]
        run(command, what="npm ci", cwd=BROWSER_TOOLS_DIR)
    if not AXE_SCRIPT.is_file():
        raise StackError(f"npm ci ran in {BROWSER_TOOLS_DIR} but left no {AXE_SCRIPT}")
    say(f"installed axe-core in {elapsed()}")
    return AXE_SCRIPT
