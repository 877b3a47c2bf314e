"""The form's bounds are GET /info's working limits (limits.js), not the schema's absolute caps:
each bounded field gets `max` and an "at most" line, and a larger number is refused before it
is sent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.explorer_page import open_explorer, open_settings, submit
from tests.support.server import RunningServer

pytestmark = pytest.mark.browser


def test_the_form_is_bounded_by_the_services_working_limits(
    page: Page, live_server: RunningServer
) -> None:
    info: dict[str, Any] = httpx.get(f"{live_server.base_url}/info", timeout=30).json()
    limits = info["limits"]
    # as another branch adds them to /info: the generation bounds, used when present
    extended = {**info, "limits": {**limits, "max_new_tokens": 7, "max_context_tokens": 40}}

    def with_generation_limits(route: Route) -> None:
        route.fulfill(json=extended)

    page.route("**/info", with_generation_limits)
    open_explorer(page, live_server.base_url)
    open_settings(page)
    d_model = page.locator("#d_model")
    expect(d_model).to_have_attribute("max", str(limits["max_d_model"]))
    expect(page.locator("#num_heads")).to_have_attribute("max", str(limits["max_heads"]))
    expect(page.locator("#num_kv_heads")).to_have_attribute("max", str(limits["max_heads"]))
    expect(page.locator("#d_model-limit")).to_have_text(
        f"At most {limits['max_d_model']:,} on this service."
    )
    expect(page.locator("#gen-max_new_tokens")).to_have_attribute("max", "7")
    expect(page.locator("#gen-max_new_tokens-limit")).to_contain_text("at most 40 tokens")

    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/attention") else None)
    assert submit(page, d_model=limits["max_d_model"] * 2) == "error"
    expect(page.locator("#d_model-error")).to_contain_text(f"At most {limits['max_d_model']:,}")
    assert sent == []
