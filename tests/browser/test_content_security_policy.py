"""The explorer works under its Content-Security-Policy (issue 11, row 22): every view, the
downloads and the pretrained model, with no violation reported; and the policy is enforced."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.explorer_page import HEAD_CARDS, THUMBS, choose_model, open_explorer, submit
from tests.support.server import RunningServer

pytestmark = pytest.mark.browser

# Recorded from before the page's own scripts run: every violation the browser reports.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


@pytest.fixture
def watched(page: Page) -> tuple[Page, list[str]]:
    """The page, recording CSP violations and the console's CSP errors."""
    console: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            console.append(message.text)

    page.add_init_script(RECORD_VIOLATIONS)
    page.on("console", on_console)
    return page, console


def violations(page: Page, console: list[str]) -> list[str]:
    reported: list[str] = page.evaluate("window.cspViolations")
    return reported + console


def test_every_view_of_the_page_works_without_a_policy_violation(
    watched: tuple[Page, list[str]], live_server: RunningServer
) -> None:
    page, console = watched
    response = page.goto(f"{live_server.base_url}/")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_function("() => Number(document.getElementById('main').dataset.generation) > 0")
    expect(page.locator("#main")).to_have_attribute("data-state", "ready")
    expect(page.locator(HEAD_CARDS)).to_have_count(4)

    assert submit(page, "Attention is all you need", num_heads=2) == "ready"
    expect(page.locator(HEAD_CARDS)).to_have_count(2)
    page.hover(f"{HEAD_CARDS}[data-head='0'] td[role=gridcell] >> nth=0")
    expect(page.locator("#tooltip")).to_be_visible()
    for tab in ("connections", "steps", "heads"):
        page.click(f"#tab-{tab}")
        expect(page.locator(f"#panel-{tab}")).to_be_visible()
    card = f"{HEAD_CARDS}[data-head='0']"
    with page.expect_download() as svg:  # a blob: URL
        page.click(f"{card} button[data-download=svg]")
    assert svg.value.suggested_filename.endswith(".svg")
    with page.expect_download() as png:  # the SVG drawn through an <img> from a blob: URL
        page.click(f"{card} button[data-download=png]")
    assert png.value.suggested_filename.endswith(".png")
    with page.expect_download():
        page.click("#download-json")

    assert violations(page, console) == []


def test_the_pretrained_model_view_works_without_a_policy_violation(
    watched: tuple[Page, list[str]], live_server: RunningServer
) -> None:
    page, console = watched
    listing: dict[str, Any] = httpx.get(f"{live_server.base_url}/models", timeout=30).json()
    names = [entry["name"] for entry in listing["models"] if entry["kind"] == "pretrained"]
    if not names:
        pytest.skip(f"GET /models lists no pretrained model: {listing.get('unavailable')}")
    open_explorer(page, live_server.base_url)
    choose_model(page, names[0])

    assert submit(page) == "ready"
    expect(page.locator(THUMBS).first).to_be_visible()
    page.click("#tab-steps")
    expect(page.locator("#panel-steps")).to_be_visible()

    assert violations(page, console) == []


def test_the_policy_is_enforced_an_inline_script_is_blocked_and_reported(
    watched: tuple[Page, list[str]], live_server: RunningServer
) -> None:
    """The control: the recording works, and the browser does apply the policy."""
    page, console = watched
    open_explorer(page, live_server.base_url)

    ran = page.evaluate(
        """() => new Promise((resolve) => {
             document.addEventListener(
               "securitypolicyviolation", () => resolve(window.inlineRan === true));
             const script = document.createElement("script");
             script.textContent = "window.inlineRan = true";
             document.body.append(script);
           })"""
    )

    assert ran is False
    assert any(v.startswith("script-src") for v in violations(page, console))
