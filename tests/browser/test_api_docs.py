"""/docs works with no internet: Swagger UI comes from the service, nothing from elsewhere."""

from __future__ import annotations

from playwright.sync_api import Page, Route

from tests.support.server import RunningServer


def test_the_api_manual_draws_from_the_service_alone(
    page: Page, live_server: RunningServer
) -> None:
    elsewhere: list[str] = []

    def refuse(route: Route) -> None:  # as a machine without internet would
        elsewhere.append(route.request.url)
        route.abort()

    page.route(lambda url: not url.startswith(live_server.base_url), refuse)
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)  # fmt: skip

    page.goto(f"{live_server.base_url}/docs")

    page.locator(".swagger-ui .info .title").filter(has_text="Attention service").wait_for()
    page.locator(".opblock-summary-path", has_text="/attention").first.wait_for()
    assert not [url for url in elsewhere if not url.startswith("data:")]
    assert violations == []
