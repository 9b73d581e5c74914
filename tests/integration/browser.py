"""Headless Chromium for the report tests: Debian's chromium driven by Playwright's Python package.

Playwright never downloads a browser here: it is pointed at the system binary (`executable_path`), with
flags that keep an offline machine's Chromium from trying to connect out, and a fresh profile directory
each time (`launch_persistent_context` passes it as --user-data-dir).

    python tests/integration/browser.py out/r.html docs/img/report.png 1280x860   # a screenshot of a page
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = "apt-get install chromium; pip install playwright (CI installs both)"


def chromium_path() -> str | None:
    """The Chromium binary: $HARNESS_CHROMIUM, else Debian's /usr/bin/chromium, else `chromium` on PATH."""
    configured = os.environ.get("HARNESS_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def missing() -> str | None:
    """Why no browser test can run here, or None."""
    if chromium_path() is None:
        return f"Chromium is not installed ({INSTALL_HINT})"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return f"Playwright's Python package is not installed ({INSTALL_HINT})"
    return None


@contextmanager
def chromium(viewport: tuple[int, int] = (1400, 1000)) -> Iterator[Any]:
    """A headless Chromium browser context with a fresh profile; pages come from ``context.new_page()``."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    assert executable is not None, missing()
    with tempfile.TemporaryDirectory(prefix="kh-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": viewport[0], "height": viewport[1]},
            timeout=30_000,  # ms: the deadline for Chromium to start
        )
        context.set_default_timeout(10_000)  # ms: every wait on the page has a deadline
        try:
            yield context
        finally:
            context.close()


def screenshot(
    page_path: Path, png: Path, *, viewport: tuple[int, int] = (1400, 1000), full_page: bool = False
) -> Path:
    """Load ``page_path`` (a local HTML file) and save a PNG of it."""
    with chromium(viewport) as context:
        page = context.new_page()
        page.goto(page_path.resolve().as_uri())
        png.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(png), full_page=full_page)
    return png


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python tests/integration/browser.py PAGE.html OUT.png [WIDTHxHEIGHT]")
    reason = missing()
    if reason:
        sys.exit(reason)
    width, _, height = (sys.argv[3] if len(sys.argv) == 4 else "1400x1000").partition("x")
    print(screenshot(Path(sys.argv[1]), Path(sys.argv[2]), viewport=(int(width), int(height))))
