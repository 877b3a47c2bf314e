"""Refresh the README's screenshots: `.venv/bin/python -m tests.browser.screenshots`.

Starts the real server, loads the page for the default sentence in Debian's Chromium and writes
docs/img/explorer-desktop.png (1280 wide), docs/img/explorer-mobile.png (390 wide) and, when the
service serves a pretrained model, docs/img/explorer-model-view.png (its model view, 1280 wide).
Not a test (pytest does not collect it): the images change only when someone runs it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from tests.browser.explorer_page import (
    CHROMIUM,
    CHROMIUM_ARGS,
    choose_model,
    generation,
    open_explorer,
    thumbnail,
    wait_settled,
)
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


def pretrained_name(base_url: str) -> str | None:
    listing = httpx.get(f"{base_url}/models", timeout=30).json()
    names = [m["name"] for m in listing["models"] if m["kind"] == "pretrained"]
    return names[0] if names else None


def model_view(page: Page, base_url: str, name: str) -> Path:
    """The model view of the default sentence: the layer × head grid with layer 1's metrics, the
    previous-token head (layer 1, head 3) open in the large view, one cell hovered, the rollout."""
    settle(page, base_url)
    choose_model(page, name)
    before = generation(page)
    page.click("#submit")
    if wait_settled(page, before) != "ready":
        raise RuntimeError(page.inner_text("#form-error"))
    page.click(thumbnail(0, 2))
    page.locator("#model-detail td[data-query='8'][data-key='7']").hover()
    top = document_box(page, "#results")
    bottom = document_box(page, "#panel-model .model-detail-row")
    path = IMAGES / "explorer-model-view.png"
    y = top["y"] - 12
    height = bottom["y"] + bottom["height"] + 16 - y
    clip = {"x": 0, "y": y, "width": 1280, "height": height}
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
        name = pretrained_name(server.base_url)
        if name:
            model = browser.new_page(viewport={"width": 1280, "height": 900})
            print(model_view(model, server.base_url, name))
        else:
            print("no pretrained model served: docs/img/explorer-model-view.png left as it was")
        browser.close()


if __name__ == "__main__":
    main()
