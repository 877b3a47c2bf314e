"""One dense answer in every encoding, end to end through a real server: bytes and milliseconds.

    python -m benchmarks.encodings

The pretrained model at 256 tokens (all 6 layers × 12 heads, dense) and the random model at
256 tokens (8 heads, d_model 256), each asked for as JSON, gzip JSON, zstd JSON, MessagePack and
MessagePack float16 over loopback with httpx; the time is the client's, from sending the request
to holding the decoded bytes (median of REPEATS after one warm-up). docs/performance.md.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.server import running_server

REPEATS = 5
WORDS_256 = " ".join(["word"] * 254)
CASES: dict[str, dict[str, Any]] = {
    "pretrained 256 tokens, 6×12 heads": {"model": "all-minilm-l6-v2", "text": WORDS_256},
    "random 256 tokens, 8 heads, d 256": {
        "sequences": [[f"w{i}" for i in range(256)]], "config": {"d_model": 256, "num_heads": 8},
    },
}  # fmt: skip
ENCODINGS: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "JSON": ({"accept-encoding": "identity"}, {}),
    "JSON, gzip": ({"accept-encoding": "gzip"}, {}),
    "JSON, zstd": ({"accept-encoding": "zstd"}, {}),
    "MessagePack": ({"accept": "application/msgpack", "accept-encoding": "identity"}, {}),
    "MessagePack float16": (
        {"accept": "application/msgpack", "accept-encoding": "identity"}, {"dtype": "float16"},
    ),
}  # fmt: skip


def timed(client: httpx.Client, body: dict[str, Any], headers: dict[str, str]) -> tuple[float, int]:
    """Milliseconds to the decoded body, and the bytes that crossed the socket."""
    started = time.perf_counter()
    with client.stream("POST", "/attention", json=body, headers=headers) as response:
        for _ in response.iter_bytes():  # decoded as it arrives
            pass
        sent = response.num_bytes_downloaded
    response.raise_for_status()
    return (time.perf_counter() - started) * 1e3, sent


def main() -> None:
    print("| answer | encoding | bytes sent | end-to-end ms (median of 5) |")
    print("|---|---|---|---|")
    with (
        tempfile.TemporaryDirectory() as logs,
        running_server({"ATTENTION_WORKERS": "1"}, Path(logs)) as server,
        httpx.Client(base_url=server.base_url, timeout=120) as client,
    ):
        for name, request in CASES.items():
            for encoding, (headers, output) in ENCODINGS.items():
                body = {**request, "output": output}
                timed(client, body, headers)  # warm-up
                runs = [timed(client, body, headers) for _ in range(REPEATS)]
                milliseconds = statistics.median(run[0] for run in runs)
                print(f"| {name} | {encoding} | {runs[0][1]:,} | {milliseconds:,.0f} |")


if __name__ == "__main__":
    main()
