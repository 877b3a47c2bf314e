"""The connection edge, below the ASGI app: what uvicorn alone leaves unbounded.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but a connection whose
request head never completes (slowloris: one header line every 10 s) is held forever, and it
holds as many connections as clients open. The ASGI app never sees such a connection, so this
guard lives in uvicorn's protocol (one instance per connection), as a mixin on both of its HTTP
implementations:

- the head (request line and headers) must arrive within `header_timeout_s` of its first byte
  (of the connection's opening, for a new one): past it, 408 and the connection closes;
- at most `max_connections` are open per worker: a new one past it closes the connection
  waiting longest for a head (408) to make room, so that clients that send whole requests
  (probes, the proxy) still get in while slow ones hold the slots; when none is waiting, the
  new one is answered 503 and closed;
- on shutdown, an idle keep-alive connection is closed only after `IDLE_DRAIN_S`, not at once:
  a request that its client had already sent, not yet read, is answered (with
  `Connection: close`) instead of lost in the reset of a closed socket (the connections still
  waiting in the listener's backlog are taken before it closes: app/serving/shutdown.py).

The body's own deadline (`body_timeout_s`) is an ASGI middleware (`app.http.middleware`), where
the app's reads of the body are.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.serving.settings import get_settings

PROTOCOL = "app.http.edge:GuardedHttpToolsProtocol"
"""What `python -m app` gives uvicorn as `http`: the httptools parser, as uvicorn's `auto`."""

IDLE_DRAIN_S = 1.0
"""How long, after shutdown begins, an idle keep-alive connection stays open for a request
already on its way (well under the proxy's upstream keepalive_timeout, 4 s)."""

LINGER_S = 1.0
"""How long a connection closed with a 408 or 503 still reads (and drops) what comes."""
LINGERING_MAX = 64
"""Connections lingering so at once, per worker; they hold descriptors besides the cap's."""
FD_RESERVE = 100
"""Descriptors a worker keeps for its own files, besides its connections: 24 measured when
idle (libraries, the event loop, the metrics files), and a margin."""
_lingering = 0  # this process's lingering connections (one server per worker process)
_in_progress: int | None = None  # requests read and not answered; None until the guard runs


def requests_in_progress() -> int | None:
    """How many requests this worker has read (their heads) and not yet answered, counted by
    the guard as they come and go (O(1): a request asks it on its way to the batcher); None
    where the guard does not run (an app called without `python -m app`'s protocol, as
    in-process tests do): nobody can say."""
    return _in_progress


def alone_in_worker() -> bool:
    """True when the caller's request is the only one this worker has read and not answered:
    no other can join it in a batch (app/serving/batching.py), so it need not wait for one.
    (A request served here counts itself: 0 means it did not come through the guard.)"""
    return requests_in_progress() == 1


def descriptors_needed(max_connections: int) -> int:
    """Open files a worker may hold at most: what the process's limit must allow."""
    return max_connections + LINGERING_MAX + FD_RESERVE


def raw_response(status: int, reason: str, detail: str, extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 answer with `{"detail": ...}`, written on a connection no ASGI request
    runs on (so no middleware adds to it), closing it."""
    body = orjson.dumps({"detail": detail})
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n"
    ).encode()
    return head + extra + b"\r\n" + body


COALESCE_BYTES = 64 * 1024
"""Writes of one turn of the loop are joined into one system call up to this many bytes; larger
ones leave as they are (joining would copy them for no gain)."""


class CoalescingTransport:
    """The connection's transport, with the writes made in one turn of the event loop sent in
    one system call at its end. uvicorn writes an answer's head and its body apart; on loopback
    the head's `send` alone wakes the client, whose next request then waits for the rest (a
    quarter of a worker's samples at c=8 went to that first write: docs/performance.md). What is
    not a write (close, write_eof) sends what is pending first; the rest is the transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes | bytearray | memoryview] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending or self._transport.is_closing():
            return
        if len(pending) > 1 and sum(map(len, pending)) <= COALESCE_BYTES:
            pending = [b"".join(pending)]
        for data in pending:
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading, ...
        return getattr(self._transport, name)


class ConnectionGuard:
    """The mixin; the attributes it reads (`connections`, `cycle`, `transport`, `loop`) are
    those of uvicorn's two HTTP protocols."""

    connections: set[Any]
    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    _head_timer: asyncio.TimerHandle | None = None
    _head_since = 0.0
    _head_cycle: Any = None
    _draining = False
    _refused = False
    _lingers = False
    _answering = False  # a request of this connection counts in `_in_progress`

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        global _in_progress
        super().connection_made(transport)  # type: ignore[misc]
        self.transport = CoalescingTransport(self.transport, self.loop)  # type: ignore[assignment]
        _in_progress = _in_progress or 0
        settings = get_settings()
        if len(self.connections) > settings.max_connections and not self._evict_slowest():
            limit = settings.max_connections
            self._close_with(
                raw_response(
                    503,
                    "Service Unavailable",
                    f"too many open connections: over the limit max_connections={limit:,} "
                    "per worker; retry later",
                    b"retry-after: 1\r\n",
                )
            )
            return
        self._await_head()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        before = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not before:  # a head completed: its request runs (or waits, pipelined)
            self._stop_waiting()
            self._count_request(+1)
        elif self._head_timer is None and self._between_requests():
            self._await_head()  # the first bytes of a head, on a kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        global _lingering
        self._stop_waiting()
        if self._lingers:
            _lingering -= 1
            self._lingers = False
        self._count_request(-1)  # one gone unanswered: its answer will never complete
        super().connection_lost(exc)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        self._count_request(-1)
        super().on_response_complete()  # type: ignore[misc]
        if self._draining and not self.transport.is_closing():
            self.transport.close()

    def shutdown(self) -> None:
        """uvicorn's shutdown closes an idle connection at once, losing a request that its
        client has already sent; this one closes it after IDLE_DRAIN_S unless a request comes,
        which is then answered with `Connection: close` (the draining middleware's header)."""
        self._draining = True
        if self._between_requests() and not self.transport.is_closing():
            self.loop.call_later(IDLE_DRAIN_S, self._close_if_idle)
            return
        super().shutdown()  # type: ignore[misc]

    def _close_if_idle(self) -> None:
        if self._between_requests() and not self.transport.is_closing():
            self.transport.close()

    def _count_request(self, change: int) -> None:
        """The worker's requests in progress: each connection counts one at most (a pipelined
        second is not counted: an undercount only skips a join, never changes an answer)."""
        global _in_progress
        answering = change > 0
        if self._answering is answering or _in_progress is None:
            return
        self._answering = answering
        _in_progress += change

    def _between_requests(self) -> bool:
        return self.cycle is None or bool(self.cycle.response_complete)

    def _await_head(self) -> None:
        self._head_since = self.loop.time()
        self._head_cycle = self.cycle
        timeout = get_settings().header_timeout_s
        self._head_timer = self.loop.call_later(timeout, self._head_timed_out)

    def _stop_waiting(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is self._head_cycle and not self.transport.is_closing():
            self._close_with(self._head_too_slow())

    def _head_too_slow(self) -> bytes:
        timeout = get_settings().header_timeout_s
        return raw_response(
            408,
            "Request Timeout",
            f"the request's line and headers did not arrive within the limit "
            f"header_timeout_s={timeout:g}",
        )

    def _evict_slowest(self) -> bool:
        """Close the connection that has waited longest for a head, if one is waiting."""
        waiting = [
            other
            for other in self.connections
            if other is not self and getattr(other, "_head_timer", None) is not None
        ]
        if not waiting:
            return False
        slowest: ConnectionGuard = min(waiting, key=lambda other: other._head_since)
        slowest._stop_waiting()
        slowest._close_with(slowest._head_too_slow())
        return True

    def _close_with(self, answer: bytes) -> None:
        """Answer, then close; what the client still sends meanwhile is read and dropped for
        up to LINGER_S: closing a socket with unread bytes resets the connection, and the
        reset would destroy the answer before the client reads it. At most LINGERING_MAX
        linger at once, so that a flood of connections cannot hold descriptors past the cap
        by being refused; past it a connection closes at once (its client may then see a
        reset instead of the answer)."""
        global _lingering
        self._stop_waiting()
        self._refused = True
        self.transport.write(answer)
        if _lingering >= LINGERING_MAX or not self.transport.can_write_eof():
            self.transport.close()
            return
        _lingering += 1
        self._lingers = True
        self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


class GuardedHttpToolsProtocol(ConnectionGuard, HttpToolsProtocol):
    """uvicorn's httptools protocol (its default where httptools is installed), guarded."""


class GuardedH11Protocol(ConnectionGuard, H11Protocol):
    """uvicorn's h11 protocol, guarded (where httptools is missing)."""
