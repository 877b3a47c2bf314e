"""Time to the first layer of a streamed answer against the whole answer, over HTTP.

    .venv/bin/python -m benchmarks.streaming [--runs 10] [--tokens 256] [--json PATH] [--smoke]

all-MiniLM-L6-v2 (6 layers, 12 heads), `layers: "all"`, per-head attention, one request at a
time against a server this script starts (`tests.support.server.launch`, one worker). For each
encoding, the whole answer (`application/msgpack`, `application/json`) is timed to its last
byte; the stream (`application/vnd.msgpack-seq`, `application/x-ndjson`) to its head frame, its
first layer frame and its end frame. Medians after a warm-up; the load average is recorded
before and after, since the host may be shared (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from app.http.encoding import JSON, MSGPACK, MSGPACK_SEQ, NDJSON
from attention_client.frames import Head, Layer, msgpack_frames

MODEL = "all-minilm-l6-v2"
WORDS = ["The", "man", "who", "passes", "the", "sentence", "should", "swing", "the", "sword"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke:
        args.runs, args.warmup, args.tokens = 1, 0, 16
    words = [WORDS[i % len(WORDS)] for i in range(args.tokens - 2)]  # + [CLS] and [SEP]
    body = {"model": MODEL, "sequences": [words], "layers": "all"}
    load_before = os.getloadavg()
    from tests.support.server import launch  # the repository's own launcher: run from its root

    with tempfile.TemporaryDirectory() as logs:
        server = launch({"ATTENTION_LOG_LEVEL": "warning"}, Path(logs))
        try:
            with httpx.Client(base_url=server.base_url, timeout=120.0) as client:
                rows = measure(client, body, args.runs, args.warmup)
        finally:
            server.stop()
    report = {"machine": machine(load_before), "tokens": args.tokens, "runs": args.runs,
              "rows": rows}  # fmt: skip
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--json", help="write the report here")
    parser.add_argument("--smoke", action="store_true", help="one small request per case")
    return parser.parse_args(argv)


def measure(
    client: httpx.Client, body: dict[str, Any], runs: int, warmup: int
) -> list[dict[str, Any]]:
    rows = []
    for whole, stream in ((MSGPACK, MSGPACK_SEQ), (JSON, NDJSON)):
        times = [whole_answer(client, body, whole) for _ in range(warmup + runs)][warmup:]
        rows.append({"case": whole, "last_byte_ms": median(times), "bytes": times[0][1]})
        marks = [streamed(client, body, stream) for _ in range(warmup + runs)][warmup:]
        rows.append({
            "case": stream,
            "head_ms": median([(mark["head"], 0) for mark in marks]),
            "first_layer_ms": median([(mark["layer"], 0) for mark in marks]),
            "last_byte_ms": median([(mark["end"], 0) for mark in marks]),
            "bytes": int(marks[0]["bytes"]),
        })  # fmt: skip
    return rows


def whole_answer(client: httpx.Client, body: dict[str, Any], accept: str) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.post("/attention", json=body, headers={"accept": accept})
    response.raise_for_status()
    return time.perf_counter() - started, len(response.content)


def streamed(client: httpx.Client, body: dict[str, Any], accept: str) -> dict[str, float]:
    """Seconds from the request to its head frame, its first layer frame and its end."""
    marks: dict[str, float] = {}
    size = 0
    started = time.perf_counter()
    with client.stream("POST", "/attention", json=body, headers={"accept": accept}) as response:
        response.raise_for_status()

        def chunks() -> Iterator[bytes]:
            nonlocal size
            for chunk in response.iter_bytes():
                size += len(chunk)
                yield chunk

        kinds = msgpack_kinds(chunks()) if accept == MSGPACK_SEQ else ndjson_kinds(chunks())
        for kind in kinds:
            marks.setdefault(kind, time.perf_counter() - started)
    marks["end"] = time.perf_counter() - started
    marks["bytes"] = size
    return marks


def msgpack_kinds(chunks: Iterator[bytes]) -> Iterator[str]:
    for frame in msgpack_frames(chunks):
        yield "head" if isinstance(frame, Head) else "layer" if isinstance(frame, Layer) else "end"


def ndjson_kinds(chunks: Iterator[bytes]) -> Iterator[str]:
    """Each line's frame kind, read from its start: a client would parse the whole line, but
    that is the client's time, not the stream's (a layer is ~10 MB of JSON at 256 tokens)."""
    line = bytearray()
    for chunk in chunks:
        start = 0
        while (newline := chunk.find(b"\n", start)) >= 0:
            line += chunk[start:newline]
            yield json.loads(bytes(line[:64]).split(b",")[0] + b"}")["frame"]  # {"frame":"…",
            line.clear()
            start = newline + 1
        line += chunk[start:]


def median(times: list[tuple[float, int]]) -> float:
    return round(float(np.median([seconds for seconds, _ in times])) * 1e3, 1)


def machine(load_before: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "load_before": [round(value, 2) for value in load_before],
        "load_after": [round(value, 2) for value in os.getloadavg()],
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        f"{report['tokens']} tokens, all 6 layers per head; medians of {report['runs']} runs; "
        f"{report['machine']}",
        f"{'case':<30} {'head ms':>9} {'1st layer ms':>13} {'last byte ms':>13} {'bytes':>12}",
    ]
    for row in report["rows"]:
        head = row.get("head_ms", "")
        first = row.get("first_layer_ms", "")
        lines.append(f"{row['case']:<30} {head!s:>9} {first!s:>13} "
                     f"{row['last_byte_ms']!s:>13} {row['bytes']:>12,}")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
