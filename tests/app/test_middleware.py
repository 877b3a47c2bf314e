from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from app.middleware import BodySizeLimit

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
