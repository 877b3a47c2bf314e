"""The bundled load generators: a lean HTTP/1.1 client on asyncio streams, and httpx.

Both keep `concurrency` keep-alive connections busy, each sending its next request as soon as
the previous answer has been read, for `seconds` or until `max_requests` have been sent.

The default bundled client speaks HTTP/1.1 itself (a prebuilt request, a status line and a
Content-Length to read): on a 2-core machine the load generator shares the cores with the
server, and httpx spends several times more CPU per request than the server's own overhead on
small requests, so it would measure itself (see docs/performance.md). httpx stays available as
`--client httpx`.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


@dataclass
class Load:
    """What the clients saw: latencies of 200 answers, statuses, errors, wall time."""

    client: str
    concurrency: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    # set by wrk, which reports percentiles rather than every latency
    summary: dict[str, float] | None = None

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def rps(self) -> float:
        if self.summary is not None:
            return self.summary["rps"]
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float | None:
        if self.summary is not None:
            return self.summary[f"p{q:g}"]
        if not self.latencies:
            return None
        if len(self.latencies) == 1:
            return self.latencies[0] * 1e3
        cuts = statistics.quantiles(self.latencies, n=1000, method="inclusive")
        return cuts[max(0, min(998, round(q * 10) - 1))] * 1e3


def run_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """uvloop when installed (it comes with uvicorn[standard]): less CPU taken from the server."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def http_request(host: str, port: int, path: str, body: bytes, accept: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: {accept}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection that sends a fixed request and reads whole answers."""

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self) -> tuple[int, int]:
        """Send the request, read the answer: (status, body bytes).

        A kept-alive connection that the server closed before answering (nothing of the answer
        arrived) is reopened once, as httpx does: seen with 468 MB answers at concurrency 8, where
        the event loop ran seconds late and uvicorn's keep-alive timers fired before it read the
        requests already sent (docs/performance.md, GPU).
        """
        reused = self.writer is not None
        try:
            head = await self._send()
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            partial = getattr(error, "partial", b"")
            if not reused or partial:
                raise
            await self.close()
            head = await self._send()
        assert self.reader is not None
        return await self._read_body(head, self.reader)

    async def _send(self) -> bytes:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(self.request)
        return await self.reader.readuntil(b"\r\n\r\n")

    async def _read_body(self, head: bytes, reader: asyncio.StreamReader) -> tuple[int, int]:
        status = int(head[9:12])
        headers = head.lower()
        if b"transfer-encoding: chunked" in headers:
            size = await self._read_chunked(reader)
        else:
            size = _content_length(headers)
            await reader.readexactly(size)
        if b"connection: close" in headers:
            await self.close()
        return status, size

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> int:
        size = 0
        while True:
            chunk = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(chunk + 2)
            size += chunk
            if chunk == 0:
                return size

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _content_length(headers: bytes) -> int:
    start = headers.find(b"content-length:")
    if start < 0:
        return 0
    end = headers.find(b"\r\n", start)
    return int(headers[start + len(b"content-length:") : end])


Exchange = Callable[[], Awaitable[int]]


async def _drive(exchanges: list[Exchange], load: Load, seconds: float, max_requests: int) -> Load:
    deadline = time.perf_counter() + seconds
    budget = [max_requests]

    async def worker(exchange: Exchange) -> None:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            started = time.perf_counter()
            try:
                status = await exchange()
            except (OSError, asyncio.IncompleteReadError, httpx.HTTPError, ValueError) as error:
                load.errors[type(error).__name__] += 1
                continue
            load.statuses[status] += 1
            if status == 200:
                load.latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker(exchange) for exchange in exchanges))
    load.seconds = time.perf_counter() - began
    return load


async def drive_raw(
    url: tuple[str, int, str],
    body: bytes,
    accept: str,
    concurrency: int,
    seconds: float,
    max_requests: int,
) -> Load:
    host, port, path = url
    request = http_request(host, port, path, body, accept)
    connections = [Connection(host, port, request) for _ in range(concurrency)]

    def exchange_of(connection: Connection) -> Exchange:
        async def exchange() -> int:
            try:
                status, _ = await connection.exchange()
            except BaseException:
                await connection.close()
                raise
            return status

        return exchange

    try:
        return await _drive(
            [exchange_of(connection) for connection in connections],
            Load("asyncio", concurrency),
            seconds,
            max_requests,
        )
    finally:
        for connection in connections:
            await connection.close()


async def drive_httpx(
    url: tuple[str, int, str],
    body: bytes,
    accept: str,
    concurrency: int,
    seconds: float,
    max_requests: int,
) -> Load:
    host, port, path = url
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json", "accept": accept}
    async with httpx.AsyncClient(
        base_url=f"http://{host}:{port}", limits=limits, timeout=120.0, trust_env=False
    ) as client:

        async def exchange() -> int:
            response = await client.post(path, content=body, headers=headers)
            return response.status_code

        return await _drive(
            [exchange] * concurrency, Load("httpx", concurrency), seconds, max_requests
        )


DRIVERS = {"asyncio": drive_raw, "httpx": drive_httpx}


def drive(
    client: str,
    url: tuple[str, int, str],
    body: bytes,
    accept: str,
    concurrency: int,
    seconds: float,
    max_requests: int = 10_000_000,
) -> Load:
    """Run one load phase with a bundled client, in a fresh event loop."""
    return run_loop(DRIVERS[client](url, body, accept, concurrency, seconds, max_requests))
