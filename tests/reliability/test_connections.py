"""Slow clients against a real `python -m app` (issue 11, row 12): 500 sockets that send one
header line every few seconds (a slowloris), a body that stops arriving, more connections than
the cap. Each ends in a 408 or 503 that names its limit, and health probes keep answering.

Lowered limits keep the suite fast: a head timeout of 1 s instead of 10, a header line every
0.5 s instead of every 10 s, a cap of 100 connections instead of 1000.
"""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field

import httpx
import pytest

from tests.reliability.conftest import StartServer, assert_healthy, wait_for
from tests.support.server import RunningServer

pytestmark = pytest.mark.integration

SOCKETS = 500
LINE_EVERY_S = 0.5
HANG_GUARD_S = 60.0
PROBES = 20


@pytest.fixture(scope="module")
def timed_server(start_server: StartServer) -> Iterator[RunningServer]:
    env = {"ATTENTION_HEADER_TIMEOUT_S": "1", "ATTENTION_BODY_TIMEOUT_S": "1"}
    with start_server(env) as server:
        yield server


@dataclass
class SlowClient:
    """One socket of the attack: what the server sent on it, and whether it closed it."""

    sock: socket.socket
    received: bytes = b""
    closed: bool = False

    def status_and_detail(self) -> tuple[int, str]:
        head, _, body = self.received.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(body)["detail"]


@dataclass
class Slowloris:
    """SOCKETS connections, each sending a request line then a header line every LINE_EVERY_S
    and never the blank line that ends the head; a thread reads what the server sends."""

    port: int
    clients: list[SlowClient] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def open(self) -> None:
        for _ in range(SOCKETS):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=HANG_GUARD_S)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: attack\r\n")
            sock.setblocking(False)
            self.clients.append(SlowClient(sock))

    def run(self) -> None:
        with selectors.DefaultSelector() as selector:
            for client in self.clients:
                selector.register(client.sock, selectors.EVENT_READ, client)
            next_line = time.monotonic() + LINE_EVERY_S
            while not self.stop.is_set() and not all(c.closed for c in self.clients):
                for key, _ in selector.select(timeout=0.05):
                    self._read(key.data, selector)
                if time.monotonic() >= next_line:
                    self._send_lines()
                    next_line += LINE_EVERY_S

    def _read(self, client: SlowClient, selector: selectors.BaseSelector) -> None:
        try:
            chunk = client.sock.recv(65536)
        except BlockingIOError:
            return
        except ConnectionError:
            chunk = b""
        client.received += chunk
        if not chunk:
            client.closed = True
            selector.unregister(client.sock)

    def _send_lines(self) -> None:
        for client in self.clients:
            if client.closed:
                continue
            # failing: the server has answered, or closed; the reader sees it
            with suppress(BlockingIOError, ConnectionError):
                client.sock.send(b"X-Slow: 1\r\n")

    def open_count(self) -> int:
        return sum(not client.closed for client in self.clients)

    def close(self) -> None:
        self.stop.set()
        for client in self.clients:
            client.sock.close()


@pytest.fixture
def slowloris() -> Iterator[list[Slowloris]]:
    """Attacks, stopped and their sockets closed at the end of the test."""
    attacks: list[Slowloris] = []
    yield attacks
    for attack in attacks:
        attack.close()


def attack(port: int, attacks: list[Slowloris]) -> tuple[Slowloris, threading.Thread]:
    attacker = Slowloris(port)
    attacks.append(attacker)
    attacker.open()
    thread = threading.Thread(target=attacker.run, daemon=True)
    thread.start()
    return attacker, thread


def probe_statuses(base_url: str) -> list[int]:
    """PROBES health probes, each on a new connection, as a load balancer sends them."""
    statuses = []
    for _ in range(PROBES):
        statuses.append(httpx.get(f"{base_url}/healthz", timeout=10).status_code)
        time.sleep(0.05)
    return statuses


def test_a_slowloris_is_cut_off_by_the_header_timeout_and_probes_still_answer(
    timed_server: RunningServer, slowloris: list[Slowloris]
) -> None:
    attacker, thread = attack(timed_server.port, slowloris)
    statuses = probe_statuses(timed_server.base_url)
    thread.join(HANG_GUARD_S)

    assert statuses == [200] * PROBES
    assert attacker.open_count() == 0, "every slow connection is closed by the server"
    answers = {client.status_and_detail() for client in attacker.clients}
    assert answers == {
        (408, "the request's line and headers did not arrive within the limit header_timeout_s=1")
    }
    assert_healthy(timed_server.base_url)


def test_a_body_that_stops_arriving_gets_408_naming_the_limit(
    timed_server: RunningServer,
) -> None:
    with socket.create_connection(("127.0.0.1", timed_server.port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(
            b"POST /attention HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"text": "The man'
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in head.lower()
    assert json.loads(body) == {
        "detail": "the request's body did not all arrive within the limit body_timeout_s=1"
    }
    assert_healthy(timed_server.base_url)


def test_past_the_connection_cap_the_slowest_connections_make_room_for_probes(
    start_server: StartServer, slowloris: list[Slowloris]
) -> None:
    cap = 100
    env = {"ATTENTION_MAX_CONNECTIONS": str(cap), "ATTENTION_HEADER_TIMEOUT_S": "60"}
    with start_server(env) as server:
        attacker, _ = attack(server.port, slowloris)
        wait_for(lambda: attacker.open_count() <= cap, f"at most {cap} left open")
        statuses = probe_statuses(server.base_url)
        still_open = attacker.open_count()
        evicted = [client.status_and_detail() for client in attacker.clients if client.closed]
        assert_healthy(server.base_url)

    assert statuses == [200] * PROBES
    # each probe made room by closing the connection waiting longest; the rest wait on
    assert cap - PROBES - 2 <= still_open <= cap
    assert len(evicted) == SOCKETS - still_open
    assert set(evicted) == {
        (408, "the request's line and headers did not arrive within the limit header_timeout_s=60")
    }
