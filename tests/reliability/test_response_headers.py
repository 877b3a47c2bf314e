"""What every answer of a real server carries (issue 11, rows 18 and 22): security headers on
the page, its static files and the API, and MessagePack only when the client wants it."""

from __future__ import annotations

import re

import httpx
import pytest

from app.http.middleware import API_POLICY
from tests.reliability.conftest import SMALL_BODY
from tests.support.server import REPO_ROOT, RunningServer

pytestmark = pytest.mark.integration

STATIC = REPO_ROOT / "app" / "static"
PAGE_PATHS = ["/", "/static/explorer.js", "/static/explorer.css", "/static/download.js"]


def directives(policy: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_the_page_and_its_files_carry_a_same_origin_policy_without_inline_script(
    live_server: RunningServer, path: str
) -> None:
    response = httpx.get(f"{live_server.base_url}{path}", timeout=30)

    assert response.status_code == 200
    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/attention", 200),
        ("GET", "/healthz", 200),
        ("GET", "/nowhere", 404),
        ("POST", "/attention", 422),
    ],
)
def test_api_answers_refusals_included_carry_the_api_policy(
    live_server: RunningServer, method: str, path: str, status: int
) -> None:
    body = SMALL_BODY if status == 200 else {"sequences": []}
    response = httpx.request(
        method, f"{live_server.base_url}{path}", json=body if method == "POST" else None, timeout=30
    )

    assert response.status_code == status
    assert response.headers["content-security-policy"] == API_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_page_itself_needs_no_inline_script_style_or_handler() -> None:
    """What the page policy would block: inline <script>, <style>, style="" attributes (in
    the HTML and in the HTML strings the scripts insert) and on...="" handlers."""
    html = (STATIC / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "<style" not in html
    for path in [STATIC / "index.html", *STATIC.glob("*.js")]:
        text = path.read_text()
        assert not re.search(r"\sstyle=", text), f"{path.name}: a style attribute"
        assert not re.search(r"<[a-z][^>]*\son[a-z]+=", text), f"{path.name}: an inline handler"
        assert "eval(" not in text, path.name
        assert "new Function" not in text, path.name


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("application/msgpack;q=0", "application/json"),
        ("application/json, application/msgpack;q=0.5", "application/json"),
        ("application/msgpack", "application/msgpack"),
    ],
)
def test_the_answer_honours_the_accept_header_q_values(
    live_server: RunningServer, accept: str, media_type: str
) -> None:
    """Row 18: `application/msgpack;q=0` means "not MessagePack"."""
    response = httpx.post(
        f"{live_server.base_url}/attention",
        json=SMALL_BODY,
        headers={"Accept": accept},
        timeout=30,
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
