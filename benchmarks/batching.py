"""Micro-batching off and on, beside the BASELINE, in one run: which `ATTENTION_BATCH_WAIT_MS`.

    .venv/bin/python -m benchmarks.batching                       # small, c=1,8,32, 3 rounds
    .venv/bin/python -m benchmarks.batching --waits 0,1 --concurrency 8 --rounds 5
    .venv/bin/python -m benchmarks.batching --case pretrained --waits 0,0.5 --concurrency 1,2,4,8

One server per wait value (`0` = batching off) and the minimal FastAPI + orjson app
(`benchmarks.baselines.minimal`), all up at once, same workers; per concurrency and round each
is driven in turn by the same load generator (wrk when installed), so that the load of other
processes falls on all alike. The table gives the medians over the rounds of req/s, p50 and
the CPU time the server's processes spent per answered request (`/proc/PID/stat`, the steadier
measure on a shared machine; not taken for the baseline), and per wait the median of the
per-round ratios of req/s to batching off. The pretrained case (the bundled encoder, one
worker) has no baseline: the minimal app answers the random model's shape.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.serving.settings import Settings
from benchmarks import peers, wrk
from benchmarks.cases import CASES, Case
from benchmarks.client import Load, drive
from benchmarks.server import process_tree, running_server

BASELINE = "minimal"
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
Driver = Callable[[tuple[str, int, str], Case, int], Load]


@dataclass(frozen=True)
class PretrainedCase(Case):
    """The bundled encoder on one sentence: a joined pass reads each layer's weights once for
    all its members (docs/performance.md, micro-batching, pretrained encoders)."""

    text: str = ""
    server_env: dict[str, str] = field(default_factory=lambda: {"ATTENTION_WORKERS": "1"})

    def payload(self) -> dict[str, Any]:
        return {"model": "all-minilm-l6-v2", "text": self.text,
                "output": {"attention": self.attention}}  # fmt: skip


PRETRAINED = PretrainedCase(
    "pretrained", 1, 12, 384, 12,
    about="all-MiniLM-L6-v2, one sentence of 10 words (12 tokens), every layer's per-head "
    "weights, one worker",
    text="the man who passes the sentence should swing the sword",
)  # fmt: skip
BATCHING_CASES: dict[str, Case] = {**CASES, PRETRAINED.name: PRETRAINED}


@dataclass(frozen=True)
class Served:
    port: int
    pid: int | None  # for its CPU time; None: not measured


def cpu_seconds(pid: int | None) -> float:
    """User and system CPU time of the process and its descendants (uvicorn's workers)."""
    total = 0
    for each in process_tree(pid) if pid else ():
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICKS_PER_S


@dataclass(frozen=True)
class BatchRow:
    case: str
    concurrency: int
    server: str  # "wait 1 ms", "off", or the baseline
    rps: float  # medians over the rounds
    p50_ms: float | None
    cpu_ms: float | None  # server CPU per answered request
    vs_off: float | None  # median of the per-round ratios of req/s to batching off
    rounds: int


def warm(url: tuple[str, int, str], case: Case, concurrency: int) -> Load:
    return drive("asyncio", url, case.body(), case.accept, concurrency, 0.5, 4 * concurrency)


def load(url: tuple[str, int, str], case: Case, concurrency: int, seconds: float) -> Load:
    if wrk.available():
        return wrk.drive_wrk(url, case.body(), case.accept, concurrency, seconds)
    return drive("asyncio", url, case.body(), case.accept, concurrency, seconds)


def label(wait_ms: float) -> str:
    return "off" if wait_ms == 0 else f"wait {wait_ms:g} ms"


@contextmanager
def servers(waits: list[float], case: Case, log_dir: Path) -> Iterator[dict[str, Served]]:
    """Each server by its label: one per wait, and the baseline."""
    workers = int(os.environ.get("ATTENTION_WORKERS", Settings.model_fields["workers"].default))
    with ExitStack() as stack:
        found = {}
        for wait in waits:
            env = {"ATTENTION_BATCH_WAIT_MS": str(wait), **case.server_env}
            server = stack.enter_context(running_server(env, log_dir))
            found[label(wait)] = Served(server.port, server.process.pid)
        if not isinstance(case, PretrainedCase):
            port = stack.enter_context(peers.running_minimal(workers, log_dir, case))
            found[BASELINE] = Served(port, None)
        yield found


def measure(
    served: dict[str, Served],
    case: Case,
    concurrency: int,
    rounds: int,
    drive_one: Driver,
    warm_one: Driver | None = None,
) -> list[BatchRow]:
    """`rounds` turns of every server in order; medians, and ratios to "off" per round."""
    seen: dict[str, list[Load]] = {name: [] for name in served}
    cpu: dict[str, list[float]] = {name: [] for name in served}
    for _ in range(rounds):
        for name, server in served.items():
            url = ("127.0.0.1", server.port, "/attention")
            if warm_one is not None:
                warm_one(url, case, concurrency)
            before = cpu_seconds(server.pid)
            seen[name].append(drive_one(url, case, concurrency))
            if server.pid is not None and seen[name][-1].ok:
                cpu[name].append((cpu_seconds(server.pid) - before) / seen[name][-1].ok * 1e3)
    off = seen.get(label(0))
    rows = []
    for name, loads in seen.items():
        p50s = [p50 for each in loads if (p50 := each.percentile_ms(50)) is not None]
        ratios = [ours.rps / base.rps for ours, base in zip(loads, off or [], strict=False)]
        rows.append(
            BatchRow(
                case=case.name,
                concurrency=concurrency,
                server=name if name != BASELINE else "minimal app (BASELINE)",
                rps=round(statistics.median(each.rps for each in loads), 1),
                p50_ms=round(statistics.median(p50s), 2) if p50s else None,
                cpu_ms=round(statistics.median(cpu[name]), 3) if cpu[name] else None,
                vs_off=round(statistics.median(ratios), 2) if off and all(ratios) else None,
                rounds=rounds,
            )
        )
    return rows


def table(rows: list[BatchRow]) -> str:
    lines = [
        "| case | conc | server | req/s | p50 ms | CPU ms per request | req/s ÷ off |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = "" if row.vs_off is None else f"{row.vs_off:.2f}"
        p50 = "" if row.p50_ms is None else f"{row.p50_ms:.2f}"
        cpu = "" if row.cpu_ms is None else f"{row.cpu_ms:.3f}"
        lines.append(
            f"| {row.case} | {row.concurrency} | {row.server} | {row.rps:,.1f} | {p50} | {cpu} "
            f"| {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="small", choices=sorted(BATCHING_CASES))
    parser.add_argument("--waits", default="0,0.5,1,2", help="ATTENTION_BATCH_WAIT_MS values")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts")
    parser.add_argument("--rounds", type=int, default=3, help="turns of every server")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per turn")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)
    waits = [float(part) for part in args.waits.split(",")]
    case = BATCHING_CASES[args.case]
    rows: list[BatchRow] = []

    def drive_one(url: tuple[str, int, str], case: Case, concurrency: int) -> Load:
        return load(url, case, concurrency, args.duration)

    with (
        tempfile.TemporaryDirectory(prefix="bench-batching-") as folder,
        servers(waits, case, Path(folder)) as ports,
    ):
        for concurrency in (int(part) for part in args.concurrency.split(",")):
            found = measure(ports, case, concurrency, args.rounds, drive_one, warm)
            rows += found
            print(table(found).split("\n", 2)[2], flush=True)
    print("\nMicro-batching (same run, servers in turn, medians):\n" + table(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
