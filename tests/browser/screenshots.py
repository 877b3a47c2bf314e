"""Refresh the README's screenshots: `.venv/bin/python -m tests.browser.screenshots`.

Starts the real server, loads the page for the default sentence in Debian's Chromium and writes
docs/img/explorer-desktop.png (1280 wide) and docs/img/explorer-mobile.png (390 wide).
Not a test (pytest does not collect it): the images change only when someone runs it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from tests.browser.explorer_page import CHROMIUM, CHROMIUM_ARGS, open_explorer
from tests.support.server import REPO_ROOT, running_server

IMAGES = REPO_ROOT / "docs" / "img"


def document_box(page: Page, selector: str) -> dict[str, float]:
    """An element's box in page coordinates (bounding_box() is relative to the viewport)."""
    box: dict[str, float] = page.eval_on_selector(
        selector,
        """e => { const r = e.getBoundingClientRect();
                  return {y: r.top + window.scrollY, height: r.height}; }""",
    )
    return box


def settle(page: Page, base_url: str) -> None:
    if open_explorer(page, base_url) != "ready":
        raise RuntimeError(page.inner_text("#form-error"))
    page.mouse.move(0, 0)


def desktop(page: Page, base_url: str) -> Path:
    """The top of the page down to the first row of heatmaps, one cell hovered."""
    settle(page, base_url)
    cell = page.locator("#heatmaps td[data-head='1'][data-query='7'][data-key='9']")
    cell.hover()
    bottom = document_box(page, "#heatmaps figure[data-head='0']")
    path = IMAGES / "explorer-desktop.png"
    height = bottom["y"] + bottom["height"] + 24
    clip = {"x": 0, "y": 0, "width": 1280, "height": height}
    page.screenshot(path=str(path), full_page=True, clip=clip)
    return path


def mobile(page: Page, base_url: str) -> Path:
    """From the results heading to the first head's metrics: what a phone shows after a scroll."""
    settle(page, base_url)
    top = document_box(page, "#results")
    card = document_box(page, "#heatmaps figure[data-head='0']")
    path = IMAGES / "explorer-mobile.png"
    y = top["y"] - 12
    height = card["y"] + card["height"] + 16 - y
    clip = {"x": 0, "y": y, "width": 390, "height": height}
    page.screenshot(path=str(path), full_page=True, clip=clip)
    return path


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as logs,
        running_server(log_dir=Path(logs)) as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        wide = browser.new_page(viewport={"width": 1280, "height": 900})
        print(desktop(wide, server.base_url))
        narrow = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        print(mobile(narrow, server.base_url))
        browser.close()


if __name__ == "__main__":
    main()
