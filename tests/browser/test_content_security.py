"""The explorer runs under a strict Content-Security-Policy: no inline script, no inline style.

The policy is laid over the server's answers here, so that this holds whatever headers the service
sends; it names only what the page needs beyond 'self': `data:` images (the empty favicon) and
`blob:` images (the PNG export draws the SVG through a blob: URL).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Route

from tests.browser.explorer_page import HEAD_CARDS, open_explorer
from tests.support.server import RunningServer

pytestmark = pytest.mark.browser

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def with_policy(route: Route) -> None:
    response = route.fetch()
    route.fulfill(
        response=response, headers={**response.headers, "content-security-policy": PAGE_POLICY}
    )


def test_every_view_and_download_works_under_a_strict_content_security_policy(
    page: Page, live_server: RunningServer
) -> None:
    page.route("**/*", with_policy)
    page.add_init_script(RECORD_VIOLATIONS)
    assert open_explorer(page, live_server.base_url) == "ready"
    for tab in ("connections", "steps", "heads"):
        page.click(f"#tab-{tab}")
    page.hover(f"{HEAD_CARDS}[data-head='1'] td[role=gridcell] >> nth=3")
    with page.expect_download() as download_png:
        page.click(f"{HEAD_CARDS}[data-head='0'] button[data-download=png]")
    assert download_png.value.suggested_filename.endswith(".png")
    assert page.evaluate("window.cspViolations") == []
