"""The connection guard (app/http/edge.py) on both of uvicorn's HTTP protocols, with real sockets
against an in-process uvicorn (tests/reliability/test_connections.py runs `python -m app`)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from app.http import edge
from app.serving.settings import get_settings
from tests.support.server import free_port

PROTOCOLS = [edge.GuardedHttpToolsProtocol, edge.GuardedH11Protocol]
REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
PATIENCE_S = 30.0  # only against a hang: each wait below ends as soon as its answer comes


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    body = b"hello"
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in [name for name in os.environ if name.startswith("ATTENTION_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ATTENTION_HEADER_TIMEOUT_S", "0.5")
    monkeypatch.setenv("ATTENTION_MAX_CONNECTIONS", "3")
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@contextmanager
def serving(protocol: type[Any], app: Any = hello) -> Iterator[tuple[int, uvicorn.Server]]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=protocol, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + PATIENCE_S
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield port, server
    finally:
        server.should_exit = True
        thread.join(PATIENCE_S)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=PATIENCE_S)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def read_answer(sock: socket.socket) -> bytes:
    """One answer of `hello` (no close): its head and its 5 bytes."""
    received = b""
    while not received.endswith(b"hello"):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {received!r}"
        received += chunk
    return received


def status_and_detail(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["detail"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_head_that_stops_arriving_gets_408_and_the_connection_closes(
    limits: pytest.MonkeyPatch, protocol: type[Any]
) -> None:
    with serving(protocol) as (port, _), closing(connect(port)) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: 1\r\n")  # no blank line
        status, detail = status_and_detail(read_until_closed(slow))

    assert status == 408
    assert detail == (
        "the request's line and headers did not arrive within the limit header_timeout_s=0.5"
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_connection_that_sends_nothing_is_closed_too(
    limits: pytest.MonkeyPatch, protocol: type[Any]
) -> None:
    with serving(protocol) as (port, _), closing(connect(port)) as silent:
        status, _ = status_and_detail(read_until_closed(silent))

    assert status == 408


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_on_a_kept_alive_connection_the_next_head_is_timed_too(
    limits: pytest.MonkeyPatch, protocol: type[Any]
) -> None:
    limits.setenv("ATTENTION_HEADER_TIMEOUT_S", "1")
    get_settings.cache_clear()
    with serving(protocol) as (port, _), closing(connect(port)) as kept:
        for _ in range(3):  # whole requests, each well within the head timeout
            assert b" 200 " in read_answer_after(kept, REQUEST)
        kept.sendall(b"GET / HTTP/1.1\r\n")
        status, _ = status_and_detail(read_until_closed(kept))

    assert status == 408


def read_answer_after(sock: socket.socket, request: bytes) -> bytes:
    sock.sendall(request)
    return read_answer(sock)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_past_the_cap_the_connection_waiting_longest_for_its_head_makes_room(
    limits: pytest.MonkeyPatch, protocol: type[Any]
) -> None:
    limits.setenv("ATTENTION_HEADER_TIMEOUT_S", "60")  # only the cap closes them here
    get_settings.cache_clear()
    with serving(protocol) as (port, _):
        slow = []
        for _ in range(3):
            slow.append(connect(port))
            slow[-1].sendall(b"GET / HTTP/1.1\r\n")
            time.sleep(0.05)  # an order of arrival
        with closing(connect(port)) as whole:
            answer = read_answer_after(whole, REQUEST)
        oldest_status, _ = status_and_detail(read_until_closed(slow[0]))
        for sock in slow[1:]:  # still open: a whole request on them is answered
            sock.sendall(b"Host: test\r\n\r\n")
            assert b" 200 " in read_answer(sock)
        for sock in slow:
            sock.close()

    assert b" 200 " in answer
    assert oldest_status == 408


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_past_the_cap_with_no_one_waiting_a_new_connection_gets_503(
    limits: pytest.MonkeyPatch, protocol: type[Any]
) -> None:
    with serving(protocol) as (port, _):
        idle = [connect(port) for _ in range(3)]
        for sock in idle:  # answered and kept alive: idle, not waiting for a head
            assert b" 200 " in read_answer_after(sock, REQUEST)
        with closing(connect(port)) as refused:
            refused.sendall(REQUEST)
            answer = read_until_closed(refused)
        for sock in idle:
            sock.close()

    status, detail = status_and_detail(answer)
    assert status == 503
    assert b"retry-after: 1" in answer
    assert detail == (
        "too many open connections: over the limit max_connections=3 per worker; retry later"
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_on_shutdown_a_request_sent_on_an_idle_connection_is_still_answered(
    limits: pytest.MonkeyPatch, protocol: type[Any]
) -> None:
    limits.setattr(edge, "IDLE_DRAIN_S", PATIENCE_S)
    with serving(protocol) as (port, server), closing(connect(port)) as kept:
        assert b" 200 " in read_answer_after(kept, REQUEST)
        server.should_exit = True
        wait_refused(port)  # shutdown has begun: the listener is closed
        answer = read_answer_after(kept, REQUEST)
        rest = read_until_closed(kept)

    assert b" 200 " in answer
    assert rest == b""  # then the connection is closed


def wait_refused(port: int) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.02)
    raise AssertionError("the listener never closed")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_requests_in_progress_are_counted_as_they_come_and_go(protocol: type[Any]) -> None:
    seen: list[int | None] = []
    second_arrived = asyncio.Event()  # both requests run on the server's one event loop

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/first":  # answered only once the second one has counted
            await second_arrived.wait()
        else:
            seen.append(edge.requests_in_progress())
            second_arrived.set()
        await hello(scope, receive, send)

    with (
        serving(protocol, counting) as (port, _),
        closing(connect(port)) as first,
        closing(connect(port)) as second,
    ):
        first.sendall(REQUEST.replace(b"GET /", b"GET /first"))
        second.sendall(REQUEST)
        read_answer(second)
        read_answer(first)
        first.sendall(REQUEST)  # alone now: the earlier two are answered
        read_answer(first)

    assert seen == [2, 1]  # the second beside the first waiting; then one alone
    assert edge.requests_in_progress() == 0
    assert not edge.alone_in_worker()  # 0: a request that came some other way (tests)


class RecordingTransport:
    """What reaches the socket: each write, and whether the transport was closed."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def write_eof(self) -> None:
        self.writes.append(b"<eof>")

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


async def one_turn() -> None:
    await asyncio.sleep(0)


@pytest.mark.anyio
async def test_an_answers_head_and_body_leave_in_one_write() -> None:
    real = RecordingTransport()
    transport = edge.CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]

    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"hello")
    assert real.writes == []  # held until the loop's turn ends
    assert transport.get_write_buffer_size() == 24
    await one_turn()

    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nhello"]


@pytest.mark.anyio
async def test_close_and_eof_send_what_is_pending_first() -> None:
    real = RecordingTransport()
    transport = edge.CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]

    transport.write(b"answer")
    transport.write_eof()
    transport.write(b"late")
    transport.close()
    await one_turn()

    assert real.writes == [b"answer", b"<eof>", b"late"]
    assert real.closing


@pytest.mark.anyio
async def test_large_writes_are_not_joined_and_a_closed_transport_gets_none() -> None:
    real = RecordingTransport()
    transport = edge.CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    large = b"x" * edge.COALESCE_BYTES

    transport.writelines([b"head", large])
    await one_turn()
    assert real.writes == [b"head", large]  # no copy of the large body to join it

    transport.write(b"after the peer left")
    real.closing = True
    await one_turn()
    assert real.writes == [b"head", large]
