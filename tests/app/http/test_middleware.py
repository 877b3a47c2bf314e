from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from app.http.middleware import (
    API_POLICY,
    DOCS_POLICY,
    PAGE_POLICY,
    BodyReadTimeout,
    BodySizeLimit,
    ResponseHeaders,
)

LIMIT = 1024


class EchoLength:
    """Reads the whole body and answers its length; records that it was called."""

    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        size, more = 0, True
        while more:
            message: Message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = str(size).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def client(inner: EchoLength) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=BodySizeLimit(inner, max_bytes=LIMIT))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def chunks(count: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield b"x" * size


@pytest.mark.anyio
async def test_a_body_within_the_limit_reaches_the_app() -> None:
    inner = EchoLength()
    async with client(inner) as http:
        response = await http.post("/", content=b"x" * LIMIT)

    assert response.status_code == 200
    assert response.text == str(LIMIT)


@pytest.mark.anyio
async def test_a_declared_content_length_over_the_limit_is_refused_unread() -> None:
    inner = EchoLength()
    async with client(inner) as http:
        response = await http.post("/", content=b"x" * (LIMIT + 1))

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.headers["connection"] == "close"
    detail = orjson.loads(response.content)["detail"]
    assert "1,025 bytes" in detail
    assert "max_body_bytes=1,024" in detail
    assert not inner.called


@pytest.mark.anyio
async def test_a_streamed_body_without_content_length_is_cut_off_past_the_limit() -> None:
    inner = EchoLength()
    async with client(inner) as http:
        request = http.build_request("POST", "/", content=chunks(count=5, size=300))
        assert "content-length" not in request.headers
        response = await http.send(request)

    assert response.status_code == 413
    assert "passed 1,024 bytes" in orjson.loads(response.content)["detail"]


@pytest.mark.anyio
async def test_a_streamed_body_within_the_limit_reaches_the_app() -> None:
    inner = EchoLength()
    async with client(inner) as http:
        response = await http.post("/", content=chunks(count=3, size=300))

    assert response.status_code == 200
    assert response.text == "900"


@pytest.mark.anyio
async def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        return None

    await BodySizeLimit(app, max_bytes=LIMIT)({"type": "lifespan"}, receive, send)

    assert seen == ["lifespan"]


# -- BodyReadTimeout ------------------------------------------------------------------------


async def slow_chunks(pause_s: float) -> AsyncIterator[bytes]:
    yield b"x" * 10
    await asyncio.sleep(pause_s)
    yield b"x" * 10


def timed_client(inner: EchoLength, timeout_s: float) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=BodyReadTimeout(inner, timeout_s=timeout_s))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.mark.anyio
async def test_a_body_that_stops_arriving_gets_408_naming_the_limit() -> None:
    inner = EchoLength()
    async with timed_client(inner, timeout_s=0.05) as http:
        response = await http.post("/", content=slow_chunks(pause_s=30))

    assert response.status_code == 408
    assert response.headers["connection"] == "close"
    assert orjson.loads(response.content) == {
        "detail": "the request's body did not all arrive within the limit body_timeout_s=0.05"
    }


@pytest.mark.anyio
async def test_a_body_that_arrives_in_time_reaches_the_app() -> None:
    inner = EchoLength()
    async with timed_client(inner, timeout_s=30) as http:
        response = await http.post("/", content=slow_chunks(pause_s=0.01))

    assert response.status_code == 200
    assert response.text == "20"


@pytest.mark.anyio
async def test_waiting_for_a_disconnect_after_the_body_is_not_timed() -> None:
    """After the body's last part, a read waits for the client to leave: as long as it likes."""
    reads: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reads.append((await receive())["type"])  # the whole (empty) body
        reads.append((await receive())["type"])  # then the disconnect, after the deadline

    async def receive() -> Message:
        if not reads:
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(0.1)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    scope = {"type": "http", "headers": []}
    await BodyReadTimeout(app, timeout_s=0.01)(scope, receive, send)

    assert reads == ["http.request", "http.disconnect"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "timed"),
    [
        ([], False),
        ([(b"content-length", b"0")], False),
        ([(b"content-length", b"10")], True),
        ([(b"transfer-encoding", b"chunked")], True),
    ],
)
async def test_only_a_request_that_declares_a_body_has_its_reads_timed(
    headers: list[tuple[bytes, bytes]], timed: bool
) -> None:
    seen: list[Receive] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(receive)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    scope = {"type": "http", "headers": headers}
    await BodyReadTimeout(app, timeout_s=1)(scope, receive, send)

    assert (seen[0] is not receive) == timed


# -- ResponseHeaders ------------------------------------------------------------------------


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def headers_client(draining: bool = False) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=ResponseHeaders(ok, draining=lambda: draining))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "policy"),
    [
        ("/", PAGE_POLICY),
        ("/static/explorer.js", PAGE_POLICY),
        ("/attention", API_POLICY),
        ("/healthz", API_POLICY),
        ("/docs", DOCS_POLICY),
        ("/docs/assets/swagger-ui.css", DOCS_POLICY),
    ],
)
async def test_every_answer_carries_the_security_headers_of_its_kind(
    path: str, policy: str
) -> None:
    async with headers_client() as http:
        response = await http.get(path)

    assert response.headers["content-security-policy"] == policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "connection" not in response.headers


def test_the_page_policy_allows_only_the_same_origin_and_no_inline_script() -> None:
    directives = dict(part.strip().split(" ", 1) for part in PAGE_POLICY.split(";"))

    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe" not in PAGE_POLICY
    assert "http" not in PAGE_POLICY  # no other origin


@pytest.mark.anyio
async def test_while_draining_every_answer_closes_its_connection() -> None:
    async with headers_client(draining=True) as http:
        response = await http.get("/healthz")

    assert response.headers["connection"] == "close"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.anyio
async def test_a_connection_header_already_there_is_not_repeated() -> None:
    inner = EchoLength()
    app = ResponseHeaders(BodySizeLimit(inner, max_bytes=LIMIT), draining=lambda: True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post("/", content=b"x" * (LIMIT + 1))

    assert response.status_code == 413
    assert response.headers.get_list("connection") == ["close"]
