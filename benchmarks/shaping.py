"""Shaped answers (output.top_k, pool, dtype) at long inputs: time, peak memory, answer bytes.

    python -m benchmarks.shaping            every case, one fresh process each, a table
    python -m benchmarks.shaping --case N   one case in this process, as JSON

Each case runs as POST /attention runs it (checks, estimate under the default limits, the
computation, the cut, the encoding), in-process and in its own process, so that the peak resident
memory (ru_maxrss) less the memory before the request is the request's own. The figures are
recorded in docs/performance.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from typing import Any

from benchmarks.memory import rss_bytes

LONG = 32_768
WORDS_256 = " ".join(["word"] * 254)  # 254 WordPieces + [CLS] and [SEP]: 256 tokens

CASES: dict[str, tuple[dict[str, Any], str]] = {
    "random 1×32768, d 16, 1 head, top_k 8, msgpack": (
        {"sequences": [[i % 1024 for i in range(LONG)]], "config": {"d_model": 16, "num_heads": 1},
         "output": {"top_k": 8}}, "application/msgpack",
    ),
    "random 1×32768, d 16, 1 head, pool 256, msgpack": (
        {"sequences": [[i % 1024 for i in range(LONG)]], "config": {"d_model": 16, "num_heads": 1},
         "output": {"pool": 256}}, "application/msgpack",
    ),
    "random 1×32768, d 16, 1 head, dense, msgpack": (
        {"sequences": [[i % 1024 for i in range(LONG)]], "config": {"d_model": 16, "num_heads": 1}},
        "application/msgpack",
    ),
    "pretrained 256 tokens, 6×12 heads, dense, JSON": (
        {"model": "all-minilm-l6-v2", "text": WORDS_256}, "application/json",
    ),
    "pretrained 256 tokens, 6×12 heads, pool 64, JSON": (
        {"model": "all-minilm-l6-v2", "text": WORDS_256, "output": {"pool": 64}},
        "application/json",
    ),
    "pretrained 256 tokens, 6×12 heads, pool 64, msgpack": (
        {"model": "all-minilm-l6-v2", "text": WORDS_256, "output": {"pool": 64}},
        "application/msgpack",
    ),
    "pretrained 256 tokens, 6×12 heads, pool 64, msgpack float16": (
        {"model": "all-minilm-l6-v2", "text": WORDS_256,
         "output": {"pool": 64, "dtype": "float16"}}, "application/msgpack",
    ),
    "pretrained 256 tokens, 6×12 heads, pool 32, JSON, precision 4": (
        {"model": "all-minilm-l6-v2", "text": WORDS_256,
         "output": {"pool": 32, "precision": 4}}, "application/json",
    ),
}  # fmt: skip


def measure(name: str) -> dict[str, Any]:
    """In this process: warm up, then run one case under the default limits."""
    import torch

    from app.http.errors import TooLarge
    from app.main import create_app
    from app.pipelines import Context, pipeline_for
    from app.routes.attention import parse_request
    from app.serving.runtime import Timing
    from app.serving.settings import Settings

    service = create_app(Settings(workers=1)).state.service
    service.pretrained.preload()
    body, media_type = CASES[name]

    def prepare(request_body: dict[str, Any], media: str) -> Any:
        request = parse_request(json.dumps(request_body).encode())
        context = Context(service, time.perf_counter(), Timing(), media)
        return asyncio.run(pipeline_for(request)(request, context))

    with torch.inference_mode():
        prepare({"text": "warm up", "config": {"d_model": 8, "num_heads": 2}}, media_type).work()
        prepare({"model": "all-minilm-l6-v2", "text": "warm up"}, media_type).work()
    before = rss_bytes()
    started, cpu = time.perf_counter(), time.process_time()
    try:
        prepared = prepare(body, media_type)
    except TooLarge as refused:
        return {"case": name, "refused": str(refused)[:160]}
    with torch.inference_mode():  # as app.serving.runtime runs the work
        content = prepared.work()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    estimate = prepared.estimate
    return {"case": name, "seconds": round(seconds, 2), "cpu": round(cpu, 2), "measured_peak": peak,
            "estimated_peak": estimate.peak_bytes, "answer_estimated": estimate.response_bytes,
            "answer": len(content)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", help="run one case in this process and print it as JSON")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case)))
        return
    mib = 2**20
    print("| case | time | CPU time | measured peak | estimated peak | answer | answer estimated |")
    print("|---|---|---|---|---|---|---|")
    for name in CASES:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.shaping", "--case", name],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        row = json.loads(out.strip().splitlines()[-1])
        if "refused" in row:
            print(f"| {name} | refused (413): {row['refused']}… | | | | | |")
            continue
        print(
            f"| {name} | {row['seconds']:.2f} s | {row['cpu']:.2f} s | "
            f"{row['measured_peak'] / mib:,.0f} MiB | "
            f"{row['estimated_peak'] / mib:,.0f} MiB | {row['answer'] / 1e6:,.3f} MB | "
            f"{row['answer_estimated'] / 1e6:,.3f} MB |"
        )


if __name__ == "__main__":
    main()
