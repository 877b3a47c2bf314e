"""API keys (optional) and CORS (none by default), against real servers."""

from __future__ import annotations

import hmac

import httpx
import pytest

from app.http import auth
from tests.reliability.conftest import KEYS, ORIGIN, assert_healthy, metric, scrape
from tests.support.server import RunningServer

PROTECTED = [("POST", "/attention"), ("GET", "/info"), ("GET", "/metrics"), ("GET", "/models")]
OPEN = ["/healthz", "/readyz", "/", "/static/api.js", "/openapi.json", "/docs"]
BODY = {"text": "The man who passes the sentence", "config": {"d_model": 16}}


@pytest.fixture
def server(keyed_server: RunningServer) -> RunningServer:
    return keyed_server


def call(server: RunningServer, method: str, path: str, **headers: str) -> httpx.Response:
    body = BODY if method == "POST" else None
    url = f"{server.base_url}{path}"
    return httpx.request(method, url, json=body, headers=headers, timeout=30)


@pytest.mark.integration
@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, auth.MISSING),
        ("Bearer wrong-key", auth.INVALID),
        (f"Bearer {KEYS[0]}x", auth.INVALID),
        (f"Bearer {KEYS[0][:-1]}", auth.INVALID),
        (f"Basic {KEYS[0]}", auth.MISSING),
        ("Bearer", auth.MISSING),
    ],
)
def test_protected_paths_need_a_valid_key(
    server: RunningServer, method: str, path: str, authorization: str | None, message: str
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = call(server, method, path, **headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": message}


@pytest.mark.integration
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_configured_key_opens_the_protected_paths(
    server: RunningServer, key: str, method: str, path: str
) -> None:
    response = call(server, method, path, Authorization=f"bearer {key}")  # scheme: any case
    assert response.status_code == 200, response.text


@pytest.mark.integration
@pytest.mark.parametrize("path", OPEN)
def test_probes_explorer_and_api_description_need_no_key(server: RunningServer, path: str) -> None:
    assert call(server, "GET", path).status_code == 200


@pytest.mark.integration
def test_the_schema_documents_the_key_and_the_401(server: RunningServer) -> None:
    schema = call(server, "GET", "/openapi.json").json()

    assert schema["components"]["securitySchemes"][auth.SCHEME]["scheme"] == "bearer"
    for method, path in PROTECTED:
        operation = schema["paths"][path][method.lower()]
        assert operation["security"] == [{auth.SCHEME: []}]
        assert "401" in operation["responses"]
    assert "security" not in schema["paths"]["/healthz"]["get"]


@pytest.mark.integration
def test_refusals_are_counted_and_the_server_stays_healthy(server: RunningServer) -> None:
    headers = {"Authorization": f"Bearer {KEYS[1]}"}
    before = metric(
        scrape(server.base_url, headers), "attention_rejections_total", reason="unauthorized"
    )
    assert call(server, "GET", "/info").status_code == 401
    after = metric(
        scrape(server.base_url, headers), "attention_rejections_total", reason="unauthorized"
    )

    assert after == before + 1
    assert_healthy(server.base_url, headers)


@pytest.mark.integration
def test_cors_allows_the_configured_origin_without_a_key(server: RunningServer) -> None:
    preflight = call(
        server, "OPTIONS", "/attention",
        Origin=ORIGIN, **{"Access-Control-Request-Method": "POST",
                          "Access-Control-Request-Headers": "authorization,content-type"},
    )  # fmt: skip
    refused = call(server, "GET", "/info", Origin=ORIGIN)
    allowed = call(server, "GET", "/info", Origin=ORIGIN, Authorization=f"Bearer {KEYS[0]}")

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    # a browser can read the 401 (and the 200): the CORS headers are on both
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    assert allowed.headers["access-control-allow-origin"] == ORIGIN


@pytest.mark.integration
def test_cors_refuses_other_origins(server: RunningServer) -> None:
    other = "https://elsewhere.example"
    preflight = call(
        server, "OPTIONS", "/attention", Origin=other, **{"Access-Control-Request-Method": "POST"}
    )
    simple = call(server, "GET", "/healthz", Origin=other)

    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


@pytest.mark.integration
def test_by_default_no_key_is_needed_and_no_origin_is_allowed(live_server: RunningServer) -> None:
    response = call(live_server, "POST", "/attention", Origin=ORIGIN)
    preflight = call(
        live_server,
        "OPTIONS",
        "/attention",
        Origin=ORIGIN,
        **{"Access-Control-Request-Method": "POST"},
    )
    schema = call(live_server, "GET", "/openapi.json").json()

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in preflight.headers
    assert "securitySchemes" not in schema["components"]


def test_keys_are_compared_in_constant_time_against_every_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    check = auth.KeyCheck(KEYS)

    assert check.accepts(KEYS[0])  # found first, the second is compared all the same
    assert len(compared) == 2
    assert {len(a) for a, b in compared} == {len(b) for a, b in compared} == {32}
    assert check.accepts(KEYS[1])
    assert not check.accepts("")
    assert not check.accepts(KEYS[0] + KEYS[1])
    assert not auth.KeyCheck(()).accepts("")


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (b"Bearer abc", "abc"),
        (b"bearer  abc ", "abc"),
        (b"Bearer", None),
        (b"Basic abc", None),
        (None, None),
    ],
)
def test_the_bearer_token_is_read_from_the_authorization_header(
    header: bytes | None, token: str | None
) -> None:
    headers = [(b"authorization", header)] if header is not None else []
    assert auth.bearer_token({"type": "http", "headers": headers}) == token
