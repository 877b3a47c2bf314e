"""benchmarks.batching's bookkeeping: turns in order, medians, ratios to batching off."""

from __future__ import annotations

from collections import Counter

from benchmarks.batching import BASELINE, Served, label, measure, table
from benchmarks.cases import SMALL, Case
from benchmarks.client import Load

RPS = {1: [100.0, 120.0, 90.0], 2: [150.0, 240.0, 180.0], 3: [300.0, 300.0, 300.0]}


def test_rounds_alternate_and_ratios_are_per_round() -> None:
    ports = {label(0): Served(1, None), label(1): Served(2, None), BASELINE: Served(3, None)}
    turns: list[int] = []

    def drive_one(url: tuple[str, int, str], case: Case, concurrency: int) -> Load:
        port = url[1]
        turns.append(port)
        load = Load("fake", concurrency, seconds=1.0, statuses=Counter({200: 1}))
        load.summary = {"rps": RPS[port][turns.count(port) - 1], "p50": float(port), "p99": 1.0}
        return load

    rows = measure(ports, SMALL, 8, 3, drive_one)
    assert turns == [1, 2, 3] * 3
    off, on, baseline = rows
    assert (off.server, on.server) == ("off", "wait 1 ms")
    assert baseline.server == "minimal app (BASELINE)"
    assert on.rps == 180.0  # the median of 150, 240, 180
    assert on.vs_off == 2.0  # the median of 1.5, 2.0, 2.0
    assert off.vs_off == 1.0
    assert on.p50_ms == 2.0
    assert on.cpu_ms is None  # no process to measure
    assert "| small | 8 | wait 1 ms | 180.0 | 2.00 |  | 2.00 |" in table(rows)
