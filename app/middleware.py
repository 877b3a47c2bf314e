"""Pure ASGI middleware: the body-size limit, enforced before anything parses the body."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Bytes of an oversized body read and thrown away before the 413: a proxy still sending the
# body when the connection closes would answer 502 instead of passing the 413 on.
DRAIN_BYTES = 64 * 1024 * 1024


class BodyTooLarge(Exception):
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
        started = ended = False

        async def counting_receive() -> Message:
            nonlocal received, ended
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                ended = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                if not ended:  # past the body's last part, receive() would wait for a disconnect
                    await _drain(receive)
                await self._reject(send, f"the body passed {self.max_bytes:,} bytes")

    async def _reject(self, send: Send, what: str) -> None:
        body = orjson.dumps({"detail": f"{what}, over the limit max_body_bytes={self.max_bytes:,}"})
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})


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
