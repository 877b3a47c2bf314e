"""The pretrained path beside a BASELINE hand-rolled FastAPI + transformers server, same run.

    .venv/bin/python -m benchmarks.pretrained_peers [--duration 3] [--rounds 3] [--smoke]

Both serve all-MiniLM-L6-v2 (the bundled weights), one worker each, the access log on (their
defaults). Cases: 10 and 120 words (12 and 122 tokens), every layer's per-head weights from
both (`layers: "all"`; the baseline's `output_attentions=True`), and the service asked for one
layer (`layers: [5]`) against the same baseline; then the same three with the service's opt-in
`config.dtype: "bfloat16"` (its numbers to about 3 significant digits, not transformers'
float32 ones: these rows are reported beside the goals, not judged by them). Each case is
driven at concurrency 2 (wrk when installed, else the bundled client), the service and the
baseline in turns; the ratio is the median of the per-turn ratios of req/s (benchmarks.peers).
Targets (issue 17): ≥ 2× at 10 words and ≥ 1.5× at 120, all layers; ≥ 3× for one layer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from itertools import cycle, islice
from pathlib import Path
from typing import Any

from benchmarks import peers, wrk
from benchmarks.client import Load, drive
from benchmarks.pretrained import WORDS
from tests.support.server import REPO_ROOT, free_port, launch

JSON = "application/json"
CONCURRENCY = 2
BASELINE = "hand-rolled FastAPI + transformers server"
TARGETS = {"10 words, all layers": 2.0, "120 words, all layers": 1.5, "10 words, layers [5]": 3.0}
BFLOAT16 = ", bfloat16"  # the service's opt-in precision, beside the float32 cases
CASES = [
    (f"{case}{precision}", count, layers, "bfloat16" if precision else "float32")
    for precision in ("", BFLOAT16)
    for case, count, layers in (
        ("10 words, all layers", 10, "all"),
        ("120 words, all layers", 120, "all"),
        ("10 words, layers [5]", 10, [5]),
    )
]


def words(count: int) -> list[str]:
    return list(islice(cycle(WORDS), count))


def service_body(name: str, count: int, layers: Any, dtype: str = "float32") -> bytes:
    body = {
        "model": name,
        "sequences": [words(count)],
        "layers": layers,
        "config": {"dtype": dtype},
        "output": {"attention": "per_head"},
    }
    return json.dumps(body).encode()


def baseline_body(count: int) -> bytes:
    return json.dumps({"sequences": [words(count)]}).encode()


@contextmanager
def running_baseline(log_dir: Path) -> Iterator[int]:
    port = free_port()
    log = (log_dir / f"transformers-{port}.log").open("wb")
    command = [sys.executable, "-m", "uvicorn", "benchmarks.baselines.transformers_server:app"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        peers.wait_ready(port, baseline_body(10), process)
        yield port
    finally:
        peers.stop(process)
        log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per turn")
    parser.add_argument("--rounds", type=int, default=3, help="alternating turns per case")
    parser.add_argument("--smoke", action="store_true", help="a few requests, no timing")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)
    rounds = 1 if args.smoke else args.rounds
    rows: list[peers.PeerRow] = []
    with tempfile.TemporaryDirectory(prefix="bench-pretrained-") as folder:
        server = launch({}, Path(folder))
        try:
            name = peers.pretrained_name(server.base_url)
            with running_baseline(Path(folder)) as port:
                for label, count, layers, dtype in CASES:
                    bodies = {
                        server.port: service_body(name, count, layers, dtype),
                        port: baseline_body(count),
                    }

                    def load(
                        url: tuple[str, int, str],
                        concurrency: int,
                        bodies: dict[int, bytes] = bodies,
                    ) -> Load:
                        body = bodies[url[1]]
                        if args.smoke or not wrk.available():
                            seconds = 30.0 if args.smoke else args.duration
                            limit = concurrency if args.smoke else 10_000_000
                            return drive("asyncio", url, body, JSON, concurrency, seconds, limit)
                        return wrk.drive_wrk(url, body, JSON, concurrency, args.duration)

                    row = peers.compare(load, server.port, port, label, CONCURRENCY, rounds)
                    rows.append(replace(row, baseline=BASELINE))
                    print(
                        f"  {label}: service {row.service_rps:.1f} req/s, baseline "
                        f"{row.baseline_rps:.1f} req/s: {row.ratio:.2f}×",
                        flush=True,
                    )
        finally:
            server.stop()
    print("\n" + peers.table(rows))
    if not args.smoke:
        for row in rows:
            case = row.case.removesuffix(BFLOAT16)
            goal = TARGETS[case]
            if case != row.case:  # not the baseline's numbers: set beside the goal only
                print(f"- {row.case}: {row.ratio:.2f}× (opt-in precision; the goal is {goal:g}×)")
                continue
            verdict = "met" if row.ratio >= goal else "MISSED"
            print(f"- {row.case}: {row.ratio:.2f}× (goal >= {goal:g}×): {verdict}")
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
