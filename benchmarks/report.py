"""The run's results: the table, the targets of docs/performance.md, and the machine."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmarks.peers import PeerRow


@dataclass
class Row:
    case: str
    client: str
    concurrency: int
    requests: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    response_bytes: int
    inprocess_ms: float | None
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.p50_ms is None or not self.inprocess_ms:
            return None
        return self.p50_ms / self.inprocess_ms


@dataclass
class Target:
    name: str
    goal: str
    measured: str
    met: bool | None  # None: not measured in this run
    margin: str = ""


def machine() -> dict[str, Any]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cores": cores,
        "cpu": model,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def load_average() -> tuple[float, float, float] | None:
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, ValueError):
        return None
    return float(one), float(five), float(fifteen)


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def table(rows: list[Row]) -> str:
    header = (
        "| case | client | conc | requests | req/s | p50 ms | p99 ms | response bytes "
        "| in-process ms | p50 ÷ in-process |"
    )
    lines = [header, "|" + "---|" * 10]
    for row in rows:
        errors = f" ({row.errors})" if row.errors else ""
        lines.append(
            f"| {row.case} | {row.client} | {row.concurrency} | {row.requests}{errors} "
            f"| {_number(row.rps, 1)} | {_number(row.p50_ms)} | {_number(row.p99_ms)} "
            f"| {row.response_bytes:,} | {_number(row.inprocess_ms)} | {_number(row.ratio)} |"
        )
    return "\n".join(lines)


def find(rows: list[Row], case: str, concurrency: int) -> Row | None:
    return next((row for row in rows if row.case == case and row.concurrency == concurrency), None)


def targets(
    rows: list[Row],
    library: list[dict[str, Any]],
    memory: dict[str, Any] | None,
    peer_rows: Sequence[PeerRow] = (),
) -> list[Target]:
    """The targets of the issue, each met, missed (and by how much) or not measured."""
    found: list[Target] = []
    for peer in peer_rows:
        if peer.case == "small" and peer.concurrency == 8:
            found.append(
                _at_least(
                    "small: service ÷ minimal app (BASELINE), req/s at c=8", peer.ratio, 1.0, "×"
                )
            )
    small8, small1 = find(rows, "small", 8), find(rows, "small", 1)
    if small8:
        found.append(_at_least("small: req/s at concurrency 8", small8.rps, 1000.0, "req/s"))
    if small1 and small1.p50_ms is not None:
        found.append(_at_most("small: p50 at concurrency 1", small1.p50_ms, 1.5, "ms"))
    large1 = find(rows, "large", 1)
    if large1 and large1.ratio is not None:
        found.append(
            _at_most("large: end-to-end p50 ÷ in-process time (c=1)", large1.ratio, 1.3, "×")
        )
    msgpack1 = find(rows, "msgpack", 1)
    if large1 and msgpack1 and large1.p50_ms and msgpack1.p50_ms:
        speedup = large1.p50_ms / msgpack1.p50_ms
        found.append(_at_least("msgpack: JSON p50 ÷ MessagePack p50 on large", speedup, 3.0, "×"))
    for entry in library:
        found.append(
            _at_most(
                f"library {entry['path']} ÷ nn.MultiheadAttention ({entry['case']})",
                entry["ratio"],
                1.2,
                "×",
            )
        )
    if memory:
        found.append(
            _at_most(
                "memory: peak RSS serving large at c=8, MB",
                memory["peak_bytes"] / 1e6,
                memory["budget_bytes"] / 1e6,
                "MB",
            )
        )
    return found


def _at_least(name: str, value: float, goal: float, unit: str) -> Target:
    met = value >= goal
    margin = "" if met else f"short by {(1 - value / goal):.0%}"
    return Target(name, f">= {goal:g} {unit}", f"{value:,.2f} {unit}", met, margin)


def _at_most(name: str, value: float, goal: float, unit: str) -> Target:
    met = value <= goal
    margin = "" if met else f"over by {(value / goal - 1):.0%}"
    return Target(name, f"<= {goal:,.2f} {unit}", f"{value:,.2f} {unit}", met, margin)


def targets_text(found: list[Target]) -> str:
    lines = []
    for target in found:
        verdict = "met" if target.met else f"MISSED ({target.margin})"
        lines.append(f"- {target.name}: {target.measured} (goal {target.goal}): {verdict}")
    return "\n".join(lines)
