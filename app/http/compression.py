"""Compressed answers: gzip, or zstd when the `zstandard` package is installed, chosen from the
request's Accept-Encoding with its q-values, for text-like media types only (JSON, the page's
HTML, JavaScript and CSS; MessagePack's raw float arrays barely shrink) and only from
`minimum_bytes` on: a smaller body fits one TCP segment uncompressed, so compressing it saves
no round trip (benchmarks/compression.py, docs/performance.md).

A pure ASGI middleware: a whole body (an answer) is compressed in one piece, in a worker thread
when it is large, so the event loop keeps serving; a streamed body (a static file sent in parts)
is compressed part by part. `Vary: Accept-Encoding` goes on every compressible answer.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from types import ModuleType
from typing import Protocol

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _zstandard() -> ModuleType | None:
    """The `zstandard` package if installed: zstd is offered only then."""
    try:
        import zstandard
    except ImportError:  # pragma: no cover - where the package is absent
        return None
    return zstandard


ZSTANDARD = _zstandard()

MINIMUM_BYTES = 1_400  # one TCP segment's payload on a 1,500-byte MTU link
THREAD_BYTES = 256 * 1024  # compressing more than this takes ~10 ms: off the event loop
GZIP_LEVEL = 1  # level 6 took 4-6x the time for 5-12 % fewer bytes (docs/performance.md)
ZSTD_LEVEL = 1  # 60 MB of JSON: 0.24 s CPU to 21 MB, where gzip 1 took 0.8 s to 25 MB
COMPRESSIBLE = ("application/json", "text/", "application/javascript", "image/svg+xml")


def available_codings() -> tuple[str, ...]:
    """The codings this process can write, preferred first when a client rates them equally."""
    return ("zstd", "gzip") if ZSTANDARD is not None else ("gzip",)


def choose_coding(accept_encoding: str | None, codings: tuple[str, ...]) -> str | None:
    """The coding with the highest q-value the client accepts (an explicit name wins over `*`;
    q=0 refuses), ties broken by `codings`' order; None: identity."""
    if not accept_encoding:
        return None
    ratings: dict[str, float] = {}
    for part in accept_encoding.split(","):
        name, *parameters = part.strip().split(";")
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0  # a malformed q: not accepted
                quality = quality if quality == quality else 0.0  # NaN
        if name.strip():
            ratings[name.strip().lower()] = quality
    best, best_quality = None, 0.0
    for coding in codings:
        quality = ratings.get(coding, ratings.get("*", 0.0))
        if quality > best_quality:
            best, best_quality = coding, quality
    return best


class Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


def compressor(coding: str) -> Compressor:
    if coding == "zstd":
        assert ZSTANDARD is not None
        stream: Compressor = ZSTANDARD.ZstdCompressor(level=ZSTD_LEVEL).compressobj()
        return stream
    return zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing


def compress_whole(coding: str, body: bytes) -> bytes:
    stream = compressor(coding)
    return stream.compress(body) + stream.flush()


class Compression:
    """Compresses compressible answers of `minimum_bytes` or more for clients that accept it."""

    def __init__(
        self,
        app: ASGIApp,
        minimum_bytes: int = MINIMUM_BYTES,
        codings: Callable[[], tuple[str, ...]] = available_codings,
    ) -> None:
        self.app, self.minimum_bytes, self.codings = app, minimum_bytes, codings()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "HEAD":
            await self.app(scope, receive, send)
            return
        request = Headers(scope=scope)
        coding = None if "range" in request else choose_coding(
            request.get("accept-encoding"), self.codings
        )  # fmt: skip
        await self.app(scope, receive, _CompressingSend(send, coding, self.minimum_bytes))


class _CompressingSend:
    """The app's `send`, holding the response's start until the first body part says whether
    (and how) the body is compressed."""

    def __init__(self, send: Send, coding: str | None, minimum_bytes: int) -> None:
        self.send, self.coding, self.minimum_bytes = send, coding, minimum_bytes
        self.start: Message | None = None
        self.stream: Compressor | None = None
        self.passing = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body" or self.passing:
            await self.send(message)
            return
        if self.stream is not None:
            await self._send_compressed(message)
            return
        assert self.start is not None
        headers = MutableHeaders(scope=self.start)
        if not self._compressible(headers):
            await self._pass_through(message)
            return
        headers.add_vary_header("Accept-Encoding")
        declared = headers.get("content-length")
        body: bytes = message.get("body", b"")
        size = int(declared) if declared and declared.isdigit() else len(body)
        if self.coding is None or size < self.minimum_bytes:
            await self._pass_through(message)
            return
        self._mark_encoded(headers)
        if not message.get("more_body", False):  # the whole body at once: an answer
            compressed = await _compress_off_loop(self.coding, body)
            headers["content-length"] = str(len(compressed))
            await self.send(self.start)
            await self.send({"type": "http.response.body", "body": compressed})
            return
        del headers["content-length"]  # parts follow: chunked
        self.stream = compressor(self.coding)
        await self.send(self.start)
        await self._send_compressed(message)

    def _compressible(self, headers: MutableHeaders) -> bool:
        assert self.start is not None
        status = self.start["status"]
        media = headers.get("content-type", "").lower()
        return (
            status >= 200
            and status not in (204, 206, 304)
            and "content-encoding" not in headers
            and media.startswith(COMPRESSIBLE)
        )

    def _mark_encoded(self, headers: MutableHeaders) -> None:
        assert self.coding is not None
        headers["content-encoding"] = self.coding
        etag = headers.get("etag")
        if etag and not etag.startswith("W/"):  # the same resource, other bytes: a weak tag
            headers["etag"] = f"W/{etag}"

    async def _pass_through(self, message: Message) -> None:
        self.passing = True
        assert self.start is not None
        await self.send(self.start)
        await self.send(message)

    async def _send_compressed(self, message: Message) -> None:
        assert self.stream is not None
        more = message.get("more_body", False)
        data = self.stream.compress(message.get("body", b""))
        if not more:
            data += self.stream.flush()
        await self.send({"type": "http.response.body", "body": data, "more_body": more})


async def _compress_off_loop(coding: str, body: bytes) -> bytes:
    if len(body) < THREAD_BYTES:
        return compress_whole(coding, body)
    return await asyncio.to_thread(compress_whole, coding, body)
