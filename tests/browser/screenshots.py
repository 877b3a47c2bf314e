"""Refresh the README's screenshots: `.venv/bin/python -m tests.browser.screenshots`.

Starts the real server, loads the page for the default sentence in Debian's Chromium and writes
docs/img/explorer-desktop.png (the first screen, 1280 × 900), docs/img/explorer-mobile.png (the
first screen of a 390 px phone), docs/img/explorer-tour.png (the tour's last step),
docs/img/explorer-steps.png (the score steps on one scale), docs/img/explorer-pipeline.png (the
pipeline strip, one query followed) and, when the service serves a
pretrained model, docs/img/explorer-model-view.png (its model view, 1280 wide) and
docs/img/explorer-search.png (its heads ranked by the weight "who" gives "man").
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
    open_explorer,
    thumbnail,
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
    """The first screen as it loads, one cell hovered."""
    settle(page, base_url)
    page.locator("#heatmaps td[data-head='1'][data-query='0'][data-key='6']").hover()
    page.evaluate("window.scrollTo(0, 0)")
    path = IMAGES / "explorer-desktop.png"
    page.screenshot(path=str(path))
    return path


def mobile(page: Page, base_url: str) -> Path:
    """The first screen of a phone."""
    settle(page, base_url)
    path = IMAGES / "explorer-mobile.png"
    page.screenshot(path=str(path))
    return path


def tour(page: Page, base_url: str) -> Path:
    """The tour's last step: the head where "who" attends most to "man", its cell focused."""
    settle(page, base_url)
    page.click("#tour-start")
    for step in range(5):
        page.wait_for_function(
            "n => document.getElementById('tour').dataset.ready === String(n)", arg=step
        )
        if step < 4:
            page.click("#tour [data-part=next]")
    path = IMAGES / "explorer-tour.png"
    page.screenshot(path=str(path))
    return path


def steps(page: Page, base_url: str) -> Path:
    """The three score steps on one colour scale."""
    settle(page, base_url)
    page.click("#tab-steps")
    top = document_box(page, "#steps article[data-step=scores]")
    bottom = document_box(page, "#steps article[data-step=masked_scores]")
    path = IMAGES / "explorer-steps.png"
    y = top["y"] - 12
    clip = {"x": 0, "y": y, "width": 1280, "height": bottom["y"] + bottom["height"] + 12 - y}
    page.screenshot(path=str(path), full_page=True, clip=clip)
    return path


def pipeline(page: Page, base_url: str) -> Path:
    """The pipeline strip with "who" followed through head 0."""
    settle(page, base_url)
    page.click("#tab-steps")
    page.select_option("#trace-query", "2")
    path = IMAGES / "explorer-pipeline.png"
    page.locator("#pipeline").screenshot(path=str(path))
    return path


def search(page: Page) -> Path:
    """The pretrained model's heads ranked by the weight "who" gives "man" (after model_view)."""
    page.mouse.move(0, 0)
    page.locator("#search-title").click()
    tokens = page.locator("#summary .token-list li").all_inner_texts()
    page.select_option("#search-query", str(tokens.index("who")))
    page.select_option("#search-key", str(tokens.index("man")))
    page.locator("#search-results button.found").first.click()
    top = document_box(page, "#head-search")
    bottom = document_box(page, "#panel-model .model-top")
    path = IMAGES / "explorer-search.png"
    y = top["y"] - 12
    clip = {"x": 0, "y": y, "width": 1280, "height": bottom["y"] + bottom["height"] + 12 - y}
    page.screenshot(path=str(path), full_page=True, clip=clip)
    return path


def pretrained_name(base_url: str) -> str | None:
    listing = httpx.get(f"{base_url}/models", timeout=30).json()
    names = [m["name"] for m in listing["models"] if m["kind"] == "pretrained"]
    return names[0] if names else None


def model_view(page: Page, base_url: str, name: str) -> Path:
    """The model view of the default sentence: the layer × head grid with layer 0's metrics, the
    previous-token head (layer 0, head 2) open in the large view, one cell hovered, the rollout."""
    settle(page, base_url)
    if choose_model(page, name) != "ready":
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
        print(tour(browser.new_page(viewport={"width": 1280, "height": 900}), server.base_url))
        print(steps(browser.new_page(viewport={"width": 1280, "height": 900}), server.base_url))
        print(pipeline(browser.new_page(viewport={"width": 1280, "height": 900}), server.base_url))
        name = pretrained_name(server.base_url)
        if name:
            model = browser.new_page(viewport={"width": 1280, "height": 900})
            print(model_view(model, server.base_url, name))
            print(search(model))
        else:
            print("no pretrained model served: docs/img/explorer-model-view.png left as it was")
        browser.close()


if __name__ == "__main__":
    main()
