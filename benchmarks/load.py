"""Drive a local server past saturation and check that it holds.

    .venv/bin/python -m benchmarks.load --url http://127.0.0.1:8000 --duration 60 --pid <pid>

`--concurrency` clients (default: twice the server's saturation, workers × (max_concurrency +
max_queue) read from /info) each send POST /attention back to back for a warm-up, then for
`--duration` seconds. A server that holds answers only 200 and 429 (never 5xx, never a dropped
connection), and its resident memory (VmRSS of `--pid` and its children, e.g. the workers)
after the run is within 10 % of what it was after the warm-up. Reports throughput, p50/p99
latency of accepted requests, statuses and memory, as text or `--json`; exits 1 when an
invariant fails.

Loopback only, bounded in time (`--duration` <= 600 s) and count (`--max-requests`).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

MAX_DURATION_S = 600.0
MAX_CONCURRENCY = 1024
RSS_TOLERANCE = 0.10
REJECTED_PAUSE_S = 0.05  # a refused client waits this long, not Retry-After: keep the pressure
SENTENCE = ["The", "man", "who", "passes", "the", "sentence", "should", "swing", "the", "sword"]


@dataclass
class Phase:
    """What the clients saw during one phase."""

    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    accepted_latencies: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())


@dataclass
class Report:
    url: str
    concurrency: int
    duration_s: float
    requests: int
    statuses: dict[str, int]
    errors: dict[str, int]
    throughput_rps: float
    accepted_rps: float
    p50_ms: float | None
    p99_ms: float | None
    rss_after_warmup_mib: float | None
    rss_after_run_mib: float | None
    rss_change: float | None
    failures: list[str]


def request_body(tokens: int, d_model: int, heads: int, attention: str) -> dict[str, Any]:
    words = [SENTENCE[i % len(SENTENCE)] for i in range(tokens)]
    return {
        "sequences": [words],
        "config": {"d_model": d_model, "num_heads": heads, "seed": 0},
        "output": {"attention": attention},
    }


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SystemExit(f"refusing {url}: the load script only drives a server on this machine")


def rss_mib(pid: int) -> float:
    """VmRSS of the process and its descendants (the workers of `--workers N`), in MiB."""
    total_kib = 0
    for process in [pid, *descendants(pid)]:
        try:
            status = Path(f"/proc/{process}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


async def saturation(client: httpx.AsyncClient) -> int:
    """Computations the server runs plus those it lets wait, in all its workers: past that it
    answers 429."""
    info = (await client.get("/info")).raise_for_status().json()
    limits = info["limits"]
    per_worker = int(limits["max_concurrency"]) + int(limits["max_queue"])
    return int(info.get("workers", 1)) * per_worker


async def drive(
    url: str,
    client_options: dict[str, Any],
    body: bytes,
    concurrency: int,
    seconds: float,
    budget: list[int],
) -> Phase:
    """`concurrency` clients sending back to back for `seconds`, or until the budget is spent.

    Each client has its own connection (an AsyncClient each): httpx's pool, shared by dozens of
    connections, costs the load script several times more CPU per request than the server.
    """
    phase = Phase()
    deadline = time.perf_counter() + seconds
    headers = {"content-type": "application/json"}
    one_connection = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def one_client() -> None:
        async with httpx.AsyncClient(
            base_url=url, limits=one_connection, **client_options
        ) as client:
            while time.perf_counter() < deadline and budget[0] > 0:
                budget[0] -= 1
                started = time.perf_counter()
                try:
                    response = await client.post("/attention", content=body, headers=headers)
                except httpx.HTTPError as error:
                    phase.errors[type(error).__name__] += 1
                    await asyncio.sleep(REJECTED_PAUSE_S)
                    continue
                phase.statuses[response.status_code] += 1
                if response.status_code == 200:
                    phase.accepted_latencies.append(time.perf_counter() - started)
                else:
                    await asyncio.sleep(REJECTED_PAUSE_S)

    began = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    phase.seconds = time.perf_counter() - began
    return phase


def percentile(values: list[float], q: int) -> float | None:
    if len(values) < 2:
        return values[0] * 1e3 if values else None
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1e3


def judge(phase: Phase, rss_before: float | None, rss_after: float | None) -> list[str]:
    failures = []
    unexpected = {status: n for status, n in phase.statuses.items() if status not in (200, 429)}
    if unexpected:
        failures.append(f"statuses other than 200 and 429: {unexpected}")
    if phase.errors:
        failures.append(f"connection errors: {dict(phase.errors)}")
    if not phase.statuses.get(200):
        failures.append("no request was accepted")
    if rss_before and rss_after and abs(rss_after - rss_before) > RSS_TOLERANCE * rss_before:
        failures.append(
            f"resident memory moved from {rss_before:.1f} to {rss_after:.1f} MiB, "
            f"more than {RSS_TOLERANCE:.0%}"
        )
    return failures


async def run(args: argparse.Namespace) -> Report:
    check_loopback(args.url)
    body = json.dumps(request_body(args.tokens, args.d_model, args.heads, args.attention)).encode()
    concurrency = args.concurrency
    timeout = httpx.Timeout(args.timeout)
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    options: dict[str, Any] = {"timeout": timeout, "headers": headers, "trust_env": False}
    async with httpx.AsyncClient(base_url=args.url, **options) as probe:
        concurrency = concurrency or min(MAX_CONCURRENCY, 2 * await saturation(probe))
    budget = [args.max_requests]
    await drive(args.url, options, body, concurrency, args.warmup, budget)
    rss_before = rss_mib(args.pid) if args.pid else None
    phase = await drive(args.url, options, body, concurrency, args.duration, budget)
    rss_after = rss_mib(args.pid) if args.pid else None
    accepted = phase.statuses.get(200, 0)
    return Report(
        url=args.url,
        concurrency=concurrency,
        duration_s=round(phase.seconds, 2),
        requests=phase.total,
        statuses={str(status): n for status, n in sorted(phase.statuses.items())},
        errors=dict(phase.errors),
        throughput_rps=round(phase.total / phase.seconds, 1),
        accepted_rps=round(accepted / phase.seconds, 1),
        p50_ms=_rounded(percentile(phase.accepted_latencies, 50)),
        p99_ms=_rounded(percentile(phase.accepted_latencies, 99)),
        rss_after_warmup_mib=_rounded(rss_before),
        rss_after_run_mib=_rounded(rss_after),
        rss_change=round(rss_after / rss_before - 1, 4) if rss_before and rss_after else None,
        failures=judge(phase, rss_before, rss_after),
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def text_report(report: Report) -> str:
    lines = [
        f"{report.url}: {report.concurrency} clients for {report.duration_s} s",
        f"  requests     {report.requests} ({report.throughput_rps}/s), statuses {report.statuses}",
        f"  accepted     {report.accepted_rps}/s, p50 {report.p50_ms} ms, p99 {report.p99_ms} ms",
        f"  errors       {report.errors or 'none'}",
    ]
    if report.rss_after_warmup_mib is not None:
        lines.append(
            f"  memory (RSS) {report.rss_after_warmup_mib} MiB after warm-up, "
            f"{report.rss_after_run_mib} MiB after the run ({report.rss_change:+.1%})"
        )
    lines.append("  verdict      " + ("; ".join(report.failures) or "held"))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Drive a local server past saturation.")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="a loopback server")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="clients; 0 = twice the server's saturation"
    )
    parser.add_argument("--pid", type=int, default=0, help="the server's pid, for VmRSS")
    parser.add_argument("--key", default="", help="an API key, when the server needs one")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per request")
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--attention", choices=("per_head", "average", "none"), default="per_head")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="a hard bound")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= MAX_DURATION_S or not 0 <= args.warmup <= MAX_DURATION_S:
        parser.error(f"--duration and --warmup must be within (0, {MAX_DURATION_S:g}] seconds")
    if not 0 <= args.concurrency <= MAX_CONCURRENCY:
        parser.error(f"--concurrency must be within [0, {MAX_CONCURRENCY}]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(run(args))
    print(json.dumps(asdict(report), indent=2) if args.json else text_report(report))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
