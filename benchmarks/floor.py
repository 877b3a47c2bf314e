"""The per-request floor in process: the service and the BASELINE minimal app called as ASGI apps.

    .venv/bin/python -m benchmarks.floor [--case small] [--rounds 15] [--calls 200]

No socket, no uvicorn and no load generator: each app is called directly with the case's body,
in turns of `--calls` calls each, and a turn's median is kept; the figure is the smallest median
over the turns (the turns least disturbed by anything else on a shared machine) and the median
of the per-turn medians beside it. What is left is what the app itself spends on a request:
routing, parsing and validation, checks, the estimate, admission, the computation, cutting,
encoding, metrics and middlewares for the service; routing, `orjson.loads`, the computation and
`orjson.dumps` for the minimal app. Issue 17's floor, without the HTTP stack both share.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import torch

from benchmarks.cases import CASES, Case

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]
WARM_UP_CALLS = 300  # modules built, caches filled, allocator warm


@dataclass(frozen=True)
class Floor:
    app: str
    best_us: float  # the smallest of the turns' medians
    median_us: float  # the median of the turns' medians


def http_scope(case: Case, body: bytes) -> Message:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"accept", case.accept.encode()),
    ]
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/attention", "raw_path": b"/attention", "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip


async def call(app: ASGIApp, case: Case, body: bytes) -> int:
    """One request through `app`; its status."""
    sent: list[Message] = []
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:  # nothing more comes: the client waits for the answer
            await asyncio.Event().wait()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(http_scope(case, body), receive, send)
    status: int = sent[0]["status"]
    return status


async def turn(app: ASGIApp, case: Case, body: bytes, calls: int) -> float:
    """The median time of `calls` requests, in microseconds."""
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        await call(app, case, body)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


async def measure(case: Case, rounds: int, calls: int) -> list[Floor]:
    from app.main import create_app
    from app.serving.settings import Settings
    from benchmarks.baselines.minimal import app as minimal

    service = create_app(Settings(torch_threads=torch.get_num_threads()))
    body = case.body()
    async with service.router.lifespan_context(service):
        apps: dict[str, ASGIApp] = {"service": service, "minimal app (BASELINE)": minimal}
        for name, app in apps.items():
            status = await call(app, case, body)
            if status != 200:
                raise RuntimeError(f"{name} answered {status} to the {case.name} case")
            for _ in range(WARM_UP_CALLS):
                await call(app, case, body)
        medians: dict[str, list[float]] = {name: [] for name in apps}
        for _ in range(rounds):  # in turns, so that both see the same machine
            for name, app in apps.items():
                medians[name].append(await turn(app, case, body, calls))
    return [Floor(name, min(values), statistics.median(values)) for name, values in medians.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="small", choices=sorted(CASES))
    parser.add_argument("--rounds", type=int, default=15, help="turns of each app")
    parser.add_argument("--calls", type=int, default=200, help="requests per turn")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (the service's on 2 cores: 1)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    case = CASES[args.case]
    floors = asyncio.run(measure(case, args.rounds, args.calls))
    service, baseline = floors
    print(f"{case.name} ({case.about}), in process, {args.rounds} turns of {args.calls} calls:")
    for floor in floors:
        print(f"  {floor.app:24s} best {floor.best_us:7.1f} µs, median {floor.median_us:7.1f} µs")
    ratio = baseline.best_us / service.best_us
    print(f"  minimal app ÷ service (best turns): {ratio:.2f}× (≥ 1 = the service as fast)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
