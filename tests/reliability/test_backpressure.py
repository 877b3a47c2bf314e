"""Backpressure: one computation at a time and one waiting; the rest are refused at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest

from tests.reliability.conftest import (
    SMALL_BODY,
    StartServer,
    assert_healthy,
    in_flight,
    metric,
    scrape,
    slow_body,
    wait_for,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.integration

SERVER_ENV = {"ATTENTION_MAX_CONCURRENCY": "1", "ATTENTION_MAX_QUEUE": "1"}
AT_ONCE_S = 3.0  # a refusal or a probe; a slow computation takes over a second, two wait
EXCESS = 4


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[RunningServer]:
    with start_server(SERVER_ENV) as server:
        yield server


def post(base_url: str, body: object, timeout: float = 120) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = httpx.post(f"{base_url}/attention", json=body, timeout=timeout)
    return response, time.perf_counter() - started


def test_excess_requests_get_429_at_once_while_probes_answer(server: RunningServer) -> None:
    base = server.base_url
    with ThreadPoolExecutor(2 + EXCESS) as pool:
        slow: list[Future[tuple[httpx.Response, float]]] = [
            pool.submit(post, base, slow_body())
            for _ in range(2)  # one computes, one waits
        ]
        wait_for(lambda: in_flight(base) >= 3, "both slow requests in flight")
        time.sleep(0.05)  # past parsing (milliseconds), into the gate
        excess = [pool.submit(post, base, SMALL_BODY, AT_ONCE_S) for _ in range(EXCESS)]
        probes = {path: _timed_get(f"{base}{path}") for path in ("/healthz", "/readyz", "/metrics")}
        refused = [future.result() for future in excess]
        assert not any(future.done() for future in slow), "the slow requests ended too soon"
        completed = [future.result() for future in slow]

    for response, seconds in refused:
        assert response.status_code == 429, response.text
        assert seconds < AT_ONCE_S
        assert int(response.headers["retry-after"]) >= 1
        assert "overloaded" in response.json()["detail"]
    for path, (status, seconds) in probes.items():
        assert status == 200, path
        assert seconds < AT_ONCE_S, path
    for response, _ in completed:
        assert response.status_code == 200, response.text
    text = scrape(base)
    assert metric(text, "attention_rejections_total", reason="overloaded") >= EXCESS
    assert metric(text, "attention_http_requests_total", route="/attention", status="429") >= EXCESS
    assert_healthy(base)


def test_each_computation_reports_its_queue_wait_and_compute_time(server: RunningServer) -> None:
    def count(name: str) -> float:
        return metric(scrape(server.base_url), name)

    queued, computed = (
        count("attention_queue_wait_seconds_count"),
        count("attention_compute_seconds_count"),
    )
    assert_healthy(server.base_url)
    # observed by the computing thread as it ends, just before the response leaves
    wait_for(lambda: count("attention_compute_seconds_count") == computed + 1, "compute time")
    assert count("attention_queue_wait_seconds_count") == queued + 1


def _timed_get(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    status = httpx.get(url, timeout=AT_ONCE_S).status_code
    return status, time.perf_counter() - started
