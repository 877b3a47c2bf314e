"""Estimated against measured peak memory, one request per fresh process.

    python -m benchmarks.memory            every case, a table (docs/reliability.md)

The decoder cases serve benchmarks/decoders.py's small Llama from ATTENTION_MODELS_DIR, built
with transformers in a temporary folder (skipped without it).

Each case runs in its own process: the service is built in-process, a tiny request warms it,
then the case's request runs exactly as POST /attention runs it (checks, estimate, computation,
cut, encoding) and the process's peak resident memory (ru_maxrss) less its resident memory before
the request is compared with the estimate. Memory, not time: the figure does not depend on the
machine's load, but on the allocator, so it is recorded with the machine it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from benchmarks.decoders import SMALL, VOCAB, build

CASES: dict[str, dict[str, Any]] = {
    "random 8×512, d 512, 8 heads, per-head": {
        "sequences": [[f"t{i}" for i in range(512)]] * 8,
        "config": {"d_model": 512, "num_heads": 8},
    },
    "random 1×2048, d 2048, 4 heads, none": {
        "sequences": [[i % 1024 for i in range(2048)]],
        "config": {"d_model": 2048, "num_heads": 4},
        "output": {"attention": "none"},
    },
    "random 4×256, d 256, 8 heads, all steps": {
        "sequences": [[f"w{i}" for i in range(256)]] * 4,
        "config": {"d_model": 256, "num_heads": 8},
        "output": {"steps": "all"},
    },
    "random row 1: d 2048, vocab 23000, float64": {
        "text": "a",
        "config": {"d_model": 2048, "num_heads": 1, "vocab_size": 23000, "dtype": "float64"},
        "output": {"attention": "none"},
    },
    "pretrained 64×256, none (row 11)": {
        "model": "all-minilm-l6-v2",
        "text": [" ".join(["word"] * 254)] * 64,
        "output": {"attention": "none"},
    },
    "pretrained 16×128, per-head, all layers": {
        "model": "all-minilm-l6-v2",
        "text": [" ".join(["word"] * 126)] * 16,
    },
    "pretrained 8×128, all steps, layer 2": {
        "model": "all-minilm-l6-v2",
        "text": [" ".join(["word"] * 126)] * 8,
        "layers": [2],
        "output": {"steps": "all"},
    },
}
WORDS = ["once", "upon", "a", "time", "there", "was", "an", "old", "king"]
DECODER = "llama"  # benchmarks/decoders.py's small Llama: 4 layers, width 256, 8 heads on 2 K/V
DECODER_CASES: dict[str, dict[str, Any]] = {
    "decoder 1×512, per-head, 4 layers": {
        "model": DECODER, "text": " ".join(WORDS[i % 9] for i in range(511)),
    },
    "decoder 1×1024, top_k 8, 4 layers": {
        "model": DECODER, "text": " ".join(WORDS[i % 9] for i in range(1023)),
        "output": {"top_k": 8},
    },
    "decoder greedy 64 new after 256, per-head rows": {
        "model": DECODER, "text": " ".join(WORDS[i % 9] for i in range(255)),
        "generate": {"max_new_tokens": 64},
    },
}  # fmt: skip
"""Run when transformers (the dev extra) can build the folder: ATTENTION_MODELS_DIR."""
CASES |= DECODER_CASES


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def measure(name: str) -> dict[str, Any]:
    """In this process: warm up, then run one case and compare its peak with its estimate."""
    from app.http.encoding import JSON
    from app.main import create_app
    from app.pipelines import Context, pipeline_for
    from app.routes.attention import parse_request
    from app.serving.runtime import Timing
    from app.serving.settings import Settings

    settings = Settings(max_request_bytes=2**40, max_response_bytes=2**40, workers=1)
    service = create_app(settings).state.service
    service.pretrained.preload()

    def run(body: dict[str, Any]) -> tuple[int, int, int]:
        request = parse_request(json.dumps(body).encode())
        context = Context(service, 0.0, Timing(), JSON)
        prepared = asyncio.run(pipeline_for(request)(request, context))
        content = prepared.work()
        estimate = prepared.estimate
        return estimate.peak_bytes, estimate.response_bytes, len(content)

    run({"text": "warm up", "config": {"d_model": 8, "num_heads": 2}})
    run({"model": "all-minilm-l6-v2", "text": "warm up"})
    if name in DECODER_CASES:  # loaded, and its first pass made, before the measure
        run({"model": DECODER, "text": "warm up", "generate": {"max_new_tokens": 2}})
    before = rss_bytes()
    estimated, answer_estimate, answer = run(CASES[name])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    return {"case": name, "estimated": estimated, "measured": peak,
            "answer_estimated": answer_estimate, "answer": answer}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", help="run one case in this process and print it as JSON")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case)))
        return
    with tempfile.TemporaryDirectory() as models:
        names = list(CASES)
        if find_spec("transformers"):
            build(Path(models), DECODER, SMALL[DECODER], VOCAB)
            os.environ["ATTENTION_MODELS_DIR"] = models  # for the processes of the cases
        else:
            names = [name for name in names if name not in DECODER_CASES]
        table(names)


def table(names: list[str]) -> None:
    print("| case | estimated peak | measured peak | ratio | answer estimated | answer |")
    print("|---|---|---|---|---|---|")
    for name in names:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", "--case", name],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        row = json.loads(out.strip().splitlines()[-1])
        mib = 2**20
        print(
            f"| {name} | {row['estimated'] / mib:,.0f} MiB | {row['measured'] / mib:,.0f} MiB | "
            f"{row['estimated'] / max(row['measured'], 1):.2f} | "
            f"{row['answer_estimated'] / mib:,.1f} MiB | {row['answer'] / mib:,.1f} MiB |"
        )


if __name__ == "__main__":
    main()
