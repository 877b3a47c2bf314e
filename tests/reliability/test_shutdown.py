"""Graceful shutdown of a real `python -m app`: SIGTERM, drain, exit 0 within the budget.

uvicorn closes its listener within 0.1 s of SIGTERM, after which a new connection is refused;
with ATTENTION_DRAIN_DELAY_S it first keeps serving, /readyz answering 503, for that long.
"""

from __future__ import annotations

import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

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
