"""The service beside its BASELINE peers, in the same run: ratios, not only absolute times.

Per case and concurrency the service and the minimal FastAPI + orjson app
(`benchmarks.baselines.minimal`, same computation, no features) are driven in turns, `rounds`
times each, by the same load generator; the ratio reported is the median of the per-turn
ratios (service ÷ minimal req/s), so that load from other processes on a shared machine falls
on both alike. Both serve with the same number of workers.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.cases import Case
from benchmarks.client import Load
from tests.support.server import REPO_ROOT, free_port

READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class PeerRow:
    case: str
    concurrency: int
    service_rps: float  # median of the turns
    baseline_rps: float
    ratio: float  # median of the per-turn ratios, service ÷ baseline
    rounds: int
    baseline: str = "minimal FastAPI + orjson app"


@contextmanager
def running_minimal(workers: int, log_dir: Path, case: Case) -> Iterator[int]:
    """The minimal app on a free loopback port, ready once it answers `case`: its port."""
    port = free_port()
    log = (log_dir / f"minimal-{port}.log").open("wb")
    command = [sys.executable, "-m", "uvicorn", "benchmarks.baselines.minimal:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(port, case.body(), process)
        yield port
    finally:
        stop(process)
        log.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_ready(port: int, body: bytes, process: subprocess.Popen[bytes]) -> None:
    """Until POST /attention with `body` answers 200 (a baseline has no readiness probe)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the baseline exited with {process.returncode}")
        try:
            response = httpx.post(f"http://127.0.0.1:{port}/attention", content=body, timeout=30)
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the baseline did not answer within {READY_TIMEOUT_S:g} s")


def pretrained_name(base_url: str) -> str:
    """The first pretrained model the service serves (GET /models)."""
    entries = httpx.get(f"{base_url}/models", timeout=30).json()["models"]
    names = [entry["name"] for entry in entries if entry["kind"] == "pretrained"]
    if not names:
        raise RuntimeError(f"the server serves no pretrained model: {entries}")
    name: str = names[0]
    return name


def compare(
    drive: Callable[[tuple[str, int, str], int], Load],
    service_port: int,
    baseline_port: int,
    case: str,
    concurrency: int,
    rounds: int,
) -> PeerRow:
    """`rounds` alternating turns of `drive(url, concurrency)` on the service, then the peer."""
    service, baseline, ratios = [], [], []
    for _ in range(rounds):
        ours = drive(("127.0.0.1", service_port, "/attention"), concurrency).rps
        theirs = drive(("127.0.0.1", baseline_port, "/attention"), concurrency).rps
        service.append(ours)
        baseline.append(theirs)
        ratios.append(ours / theirs if theirs else 0.0)
    return PeerRow(
        case=case,
        concurrency=concurrency,
        service_rps=statistics.median(service),
        baseline_rps=statistics.median(baseline),
        ratio=statistics.median(ratios),
        rounds=rounds,
    )


def table(rows: list[PeerRow]) -> str:
    lines = [
        "| case | conc | service req/s | baseline | baseline req/s | service ÷ baseline |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.case} | {row.concurrency} | {row.service_rps:,.1f} | {row.baseline} "
            f"(BASELINE) | {row.baseline_rps:,.1f} | {row.ratio:.2f} |"
        )
    return "\n".join(lines)
