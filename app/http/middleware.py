"""Pure ASGI middleware: the body-size limit, enforced before anything parses the body; the
body's read deadline; the headers every answer carries (security, and `Connection: close`
while draining)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.auth import route_path

# Bytes of an oversized body read and thrown away before the 413: a proxy still sending the
# body when the connection closes would answer 502 instead of passing the 413 on.
DRAIN_BYTES = 64 * 1024 * 1024


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


class BodySizeLimit:
    """413 for a declared Content-Length over the limit, and for a streamed body (no
    Content-Length, chunked) as soon as the bytes received pass it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _drain(receive)
            await self._reject(send, f"the body is {declared:,} bytes")
            return
        received = 0
        ended = False

        async def counting_receive() -> Message:
            nonlocal received, ended
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                ended = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        tracked = TrackedSend(send)
        try:
            await self.app(scope, counting_receive, tracked)
        except BodyTooLarge:
            if not tracked.started:
                if not ended:  # past the body's last part, receive() would wait for a disconnect
                    await _drain(receive)
                await self._reject(send, f"the body passed {self.max_bytes:,} bytes")

    async def _reject(self, send: Send, what: str) -> None:
        detail = f"{what}, over the limit max_body_bytes={self.max_bytes:,}"
        await send_closing(send, 413, detail)


class TrackedSend:
    """`send`, remembering whether the response has started: a refusal can only replace an
    answer that has not."""

    def __init__(self, send: Send) -> None:
        self.send, self.started = send, False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)


class BodyReadTimeout:
    """408 when the body has not all arrived `timeout_s` after the request's head (a client
    sending one byte every few seconds would otherwise hold its connection, and the request's
    task, for as long as it likes). The clock runs from the app's start, only while the app
    waits for body bytes; once the body has ended, reads (waiting for a disconnect) are not
    timed."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app, self.timeout_s = app, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _declares_body(scope):
            # no body to wait for (probes, the page): spare them the timer (8-15 µs measured)
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        ended = False

        async def timed_receive() -> Message:
            nonlocal ended
            if ended:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow from None
            ended = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        tracked = TrackedSend(send)
        try:
            await self.app(scope, timed_receive, tracked)
        except BodyTooSlow:
            if not tracked.started:
                detail = (
                    "the request's body did not all arrive within the limit "
                    f"body_timeout_s={self.timeout_s:g}"
                )
                await send_closing(send, 408, detail)


async def send_closing(send: Send, status: int, detail: str) -> None:
    """`{"detail": ...}` with `Connection: close`: the rest of the request is not read."""
    body = orjson.dumps({"detail": detail})
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def _declares_body(scope: Scope) -> bool:
    """HTTP/1.1: a request has a body only with a Content-Length (above 0) or a
    Transfer-Encoding; without either the server hands the app an empty one at once."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _drain(receive: Receive) -> None:
    """Read what the client still sends, up to DRAIN_BYTES, so that it reads our answer."""
    drained = 0
    while drained < DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


# The explorer's page loads its own module scripts and stylesheet and nothing else; its scripts
# set styles through the CSSOM (allowed), fetch the API on the same origin, and draw downloads
# through blob: URLs (an SVG into an <img>, for the PNG); the favicon is `data:,`.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# JSON answers: nothing to load or run.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# /docs: Swagger UI from this origin (app/routes/docs.py), started by FastAPI's inline script,
# its styles partly inline; it fetches /openapi.json and, on "Try it out", the API itself.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect"})
COMMON_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


def policy_for(path: str) -> str:
    if path == "/" or path.startswith("/static/"):
        return PAGE_POLICY
    if path in DOCS_PATHS or path.startswith("/docs/assets/"):
        return DOCS_POLICY
    return API_POLICY


class ResponseHeaders:
    """Security headers on every answer (the page's Content-Security-Policy on / and
    /static/*), and `Connection: close` while the server drains, so that keep-alive clients
    reconnect, to another replica, instead of sending on a connection about to close."""

    def __init__(self, app: ASGIApp, draining: Callable[[], bool]) -> None:
        self.app, self.draining = app, draining
        self._headers = {
            policy: [*COMMON_HEADERS, (b"content-security-policy", policy.encode())]
            for policy in (PAGE_POLICY, API_POLICY, DOCS_POLICY)
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._headers[policy_for(route_path(scope))]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), *extra]
                if self.draining() and not any(name == b"connection" for name, _ in headers):
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
