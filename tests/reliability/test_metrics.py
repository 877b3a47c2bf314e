"""GET /metrics: Prometheus text, by route template and status, summed over workers."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.reliability.conftest import StartServer, metric, scrape
from tests.support.server import RunningServer

pytestmark = pytest.mark.integration

FAMILIES = {
    "attention_http_requests_total": "counter",
    "attention_http_request_duration_seconds": "histogram",
    "attention_http_requests_in_flight": "gauge",
    "attention_rejections_total": "counter",
    "attention_queue_wait_seconds": "histogram",
    "attention_compute_seconds": "histogram",
}


def test_metrics_are_prometheus_text_with_every_family(live_server: RunningServer) -> None:
    httpx.post(f"{live_server.base_url}/attention", json={"text": "a b"}, timeout=30)
    response = httpx.get(f"{live_server.base_url}/metrics", timeout=30)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    for name, kind in FAMILIES.items():
        family = name.removesuffix("_total")
        assert (
            f"# TYPE {family} {kind}" in response.text or f"# TYPE {name} {kind}" in response.text
        )
    assert metric(response.text, "attention_compute_seconds_count") >= 1


@pytest.mark.parametrize(
    ("method", "path", "route", "status"),
    [
        ("GET", "/healthz", "/healthz", "200"),
        ("GET", "/static/api.js", "/static/{path:path}", "200"),
        ("GET", "/no/such/page-7f3a", "unmatched", "404"),
        ("GET", "/attention", "/attention", "405"),
        ("POST", "/attention", "/attention", "422"),
    ],
)
def test_requests_are_counted_by_route_template_and_status(
    live_server: RunningServer, method: str, path: str, route: str, status: str
) -> None:
    labels = {"method": method, "route": route, "status": status}
    before = metric(scrape(live_server.base_url), "attention_http_requests_total", **labels)
    httpx.request(method, f"{live_server.base_url}{path}", json={} if method == "POST" else None)
    text = scrape(live_server.base_url)

    assert metric(text, "attention_http_requests_total", **labels) == before + 1
    assert 'route="/no/such' not in text  # never the raw path
    duration = metric(text, "attention_http_request_duration_seconds_count", route=route)
    assert duration >= 1


@pytest.mark.parametrize(
    ("reason", "request_kwargs"),
    [
        ("invalid", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
        ("invalid", {"content": b"{}", "headers": {"content-type": "text/plain"}}),
        ("invalid", {"json": {"text": "a", "config": {"num_heads": 0}}}),
        ("too_large", {"json": {"sequences": [["a"] * 3000]}}),
        ("too_large", {"content": b" " * (16 * 1024 * 1024 + 1)}),
    ],
)
def test_rejections_are_counted_by_reason(
    live_server: RunningServer, reason: str, request_kwargs: dict[str, object]
) -> None:
    base = live_server.base_url
    before = metric(scrape(base), "attention_rejections_total", reason=reason)
    response = httpx.post(f"{base}/attention", timeout=30, **request_kwargs)  # type: ignore[arg-type]

    assert response.status_code in {400, 413, 415, 422}
    assert metric(scrape(base), "attention_rejections_total", reason=reason) == before + 1


def test_counts_from_every_worker_add_up(start_server: StartServer, tmp_path: Path) -> None:
    with start_server({"ATTENTION_WORKERS": "2"}) as server:
        workers = _workers(server.process.pid)
        assert len(workers) == 2
        shared = Path(_environment(workers[0])["PROMETHEUS_MULTIPROC_DIR"])
        sent = 0
        for _ in range(20):  # fresh connections, until the kernel has given both workers some
            sent += asyncio.run(_healthz_burst(server.base_url, 20))
            per_worker = [_healthz_count(shared, pid, tmp_path / str(pid)) for pid in workers]
            if all(per_worker):
                break
        totals = [_healthz_total(scrape(server.base_url)) for _ in range(4)]
        live = metric(scrape(server.base_url), "attention_http_requests_in_flight")
        code = server.stop()  # SIGTERM: the parent passes it on to both workers
    assert all(per_worker), per_worker
    assert sum(per_worker) == sent
    assert totals == [sent] * 4  # whichever worker answers the scrape
    assert live == 1  # the scrape itself: 'livesum' over the live workers
    assert code == 0
    assert not shared.exists()  # removed when the server exits


def _healthz_total(text: str) -> float:
    return metric(text, "attention_http_requests_total", route="/healthz")


def _healthz_count(shared: Path, pid: int, alone: Path) -> float:
    """What one worker counted: its own counter file, read on its own."""
    counters = shared / f"counter_{pid}.db"
    if not counters.exists():
        return 0.0
    alone.mkdir(exist_ok=True)
    shutil.copy(counters, alone / counters.name)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(alone))
    return _healthz_total(generate_latest(registry).decode())


async def _healthz_burst(base_url: str, count: int) -> int:
    async def one() -> int:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:  # a new connection
            return (await client.get("/healthz")).status_code

    statuses = await asyncio.gather(*(one() for _ in range(count)))
    assert set(statuses) == {200}
    return count


def _workers(pid: int) -> list[int]:
    """uvicorn's worker processes: the children spawned by multiprocessing."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return [child for child in children if b"spawn_main" in _cmdline(child)]


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def _environment(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().partition("=")[::2] for entry in entries if b"=" in entry)
