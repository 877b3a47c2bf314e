"""Deadlines: past ATTENTION_REQUEST_TIMEOUT_S the answer is 504, and the service goes on."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.reliability.conftest import (
    StartServer,
    assert_healthy,
    metric,
    scrape,
    slow_body,
    wait_for,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.integration

TIMEOUT_S = 0.2
SERVER_ENV = {"ATTENTION_REQUEST_TIMEOUT_S": str(TIMEOUT_S), "ATTENTION_MAX_CONCURRENCY": "1"}


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[RunningServer]:
    with start_server(SERVER_ENV) as server:
        yield server


def test_a_computation_past_its_deadline_gets_504_and_the_service_recovers(
    server: RunningServer,
) -> None:
    base = server.base_url
    with httpx.Client(base_url=base, timeout=60) as client:
        started = time.perf_counter()
        late = client.post("/attention", json=slow_body())
        seconds = time.perf_counter() - started
        # the thread still computes and keeps the only slot: the next one cannot start in time
        waiting = client.post("/attention", json=slow_body(tokens=8))

    assert late.status_code == 504, late.text
    assert late.json() == {"detail": f"the computation ran past its deadline of {TIMEOUT_S:g} s"}
    assert seconds < 5.0  # answered at the deadline, not when the computation ends
    assert waiting.status_code == 504, waiting.text
    assert "no computation slot freed" in waiting.json()["detail"]

    def finished() -> bool:  # the abandoned thread ends, gives its slot back, is counted
        return metric(scrape(base), "attention_compute_seconds_count") >= 1

    wait_for(finished, "the late computation's thread to finish")
    text = scrape(base)
    assert metric(text, "attention_rejections_total", reason="timeout") == 2
    assert metric(text, "attention_http_requests_total", route="/attention", status="504") == 2
    assert_healthy(base)
