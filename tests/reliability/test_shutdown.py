"""Graceful shutdown of a real `python -m app`: SIGTERM, drain, exit 0 within the budget.

uvicorn closes its listener within 0.1 s of SIGTERM, after which a new connection is refused;
with ATTENTION_DRAIN_DELAY_S it first keeps serving, /readyz answering 503, for that long.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest

from tests.reliability.conftest import SMALL_BODY, StartServer, in_flight, slow_body, wait_for

pytestmark = pytest.mark.integration

GRACE_S = 8.0


def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(
    start_server: StartServer,
) -> None:
    with start_server({"ATTENTION_GRACEFUL_SHUTDOWN_S": str(GRACE_S)}) as server:
        base = server.base_url
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(httpx.post, f"{base}/attention", json=slow_body(), timeout=60)
            wait_for(lambda: in_flight(base) >= 2, "the slow request in flight")
            sent = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            wait_for(lambda: _refused(base), "the listener to close", timeout=2.0)
            response = slow.result()
        code = _exit_code(server.process)
        exited_after = time.monotonic() - sent

    assert response.status_code == 200, response.text
    assert len(response.json()["results"][0]["output"]) == 2048
    assert code == 0
    assert exited_after < GRACE_S


def test_with_a_drain_delay_readiness_turns_503_while_requests_are_still_served(
    start_server: StartServer,
) -> None:
    delay = 3.0
    env = {"ATTENTION_GRACEFUL_SHUTDOWN_S": str(GRACE_S), "ATTENTION_DRAIN_DELAY_S": str(delay)}
    with (
        start_server(env) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as kept_alive,
        ThreadPoolExecutor(1) as pool,
    ):
        base = server.base_url
        assert kept_alive.get("/readyz").status_code == 200  # opens the connection
        slow = pool.submit(httpx.post, f"{base}/attention", json=slow_body(), timeout=60)
        wait_for(lambda: in_flight(base) >= 2, "the slow request in flight")
        sent = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        on_open_connection = kept_alive.get("/readyz")
        on_new_connection = httpx.get(f"{base}/readyz", timeout=10)
        alive = httpx.get(f"{base}/healthz", timeout=10)
        served = httpx.post(f"{base}/attention", json=SMALL_BODY, timeout=30)
        during_delay = time.monotonic() - sent
        response = slow.result()
        code = _exit_code(server.process)
        exited_after = time.monotonic() - sent

    assert during_delay < delay, "the checks ran past the drain delay: inconclusive"
    for readiness in (on_open_connection, on_new_connection):
        assert readiness.status_code == 503
        assert readiness.json() == {"detail": "draining: shutting down"}
    assert alive.status_code == 200
    assert served.status_code == 200, served.text
    assert response.status_code == 200, response.text
    assert code == 0
    assert exited_after < GRACE_S


KEEP_ALIVE_CLIENTS = 30


@dataclass
class KeepAliveClient:
    """Sends POST /attention back to back on one kept-alive connection until the server
    refuses a new connection (its listener closed): what each request got, in order."""

    base_url: str
    outcomes: list[str] = field(default_factory=list)  # "200 close", "200 keep", or an error

    def run(self, signalled: threading.Event) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while True:
                try:
                    response = client.post("/attention", json=SMALL_BODY)
                except httpx.ConnectError:
                    if signalled.is_set():
                        return  # refused before anything was sent: the client goes elsewhere
                    raise
                except httpx.TransportError as error:  # sent, and never answered: lost
                    self.outcomes.append(f"lost: {type(error).__name__}: {error}")
                    return
                closing = response.headers.get("connection", "").lower() == "close"
                self.outcomes.append(f"{response.status_code} {'close' if closing else 'keep'}")


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("drain_delay_s", ["0", "1"])
def test_sigterm_with_30_keep_alive_clients_answers_every_request_it_accepted(
    start_server: StartServer, drain_delay_s: str, workers: str
) -> None:
    """Issue 11, row 20: no request sent on a kept-alive connection is lost; while draining,
    answers carry `Connection: close`, and the clients' next connection is refused."""
    env = {
        "ATTENTION_GRACEFUL_SHUTDOWN_S": str(GRACE_S),
        "ATTENTION_DRAIN_DELAY_S": drain_delay_s,
        "ATTENTION_WORKERS": workers,
    }
    signalled = threading.Event()
    with start_server(env) as server:
        clients = [KeepAliveClient(server.base_url) for _ in range(KEEP_ALIVE_CLIENTS)]
        with ThreadPoolExecutor(KEEP_ALIVE_CLIENTS) as pool:
            running = [pool.submit(client.run, signalled) for client in clients]
            wait_for(lambda: all(len(c.outcomes) >= 3 for c in clients), "every client served")
            signalled.set()
            server.process.send_signal(signal.SIGTERM)
            for future in running:
                future.result(timeout=GRACE_S + 30)
        code = _exit_code(server.process)

    lost = [outcome for client in clients for outcome in client.outcomes if "lost" in outcome]
    assert lost == []
    assert {outcome.split()[0] for client in clients for outcome in client.outcomes} == {"200"}
    # each client's last answer told it to close: it never sent on a connection being closed
    assert {client.outcomes[-1] for client in clients} == {"200 close"}
    assert code == 0


def _refused(base_url: str) -> bool:
    try:
        httpx.get(f"{base_url}/healthz", timeout=1.0)
    except httpx.ConnectError:
        return True
    except httpx.TransportError:
        return False
    return False


def _exit_code(process: subprocess.Popen[bytes]) -> int:
    return process.wait(GRACE_S + 5)
