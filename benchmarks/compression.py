"""Where compressing a JSON answer pays off: bytes saved against compression time, by size.

    python -m benchmarks.compression

Real answers of the random model (full precision, as the service writes them) from a few
hundred bytes to megabytes, each compressed with gzip (levels 1 and 6) and zstd (levels 1 and
3, when the `zstandard` package is installed): the ratio, the time, and the link speed below
which the compression is worth its time (the saved bytes take longer to send than the
compression takes).
The threshold of app/http/compression.py is chosen from this table (docs/performance.md).
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from app.http.encoding import JSON, encode

REPEATS = 5


def answer(tokens: int, heads: int) -> bytes:
    """A JSON answer shaped like the service's: attention H × L × L and output L × d_model."""
    draw = np.random.default_rng(0)
    scores = draw.normal(size=(heads, tokens, tokens)).astype(np.float32)
    weights = np.exp(scores) / np.exp(scores).sum(axis=-1, keepdims=True)
    payload: dict[str, Any] = {
        "results": [{
            "tokens": [f"t{i}" for i in range(tokens)],
            "output": draw.normal(size=(tokens, 8)).astype(np.float32),
            "attention": weights,
        }],
        "meta": {"device": "cpu", "elapsed_ms": 1.234},
    }  # fmt: skip
    return encode(payload, JSON)


def compressors() -> dict[str, Callable[[bytes], bytes]]:
    found: dict[str, Callable[[bytes], bytes]] = {
        "gzip 1": lambda data: gzip.compress(data, 1, mtime=0),
        "gzip 6": lambda data: gzip.compress(data, 6, mtime=0),
    }
    try:
        import zstandard
    except ImportError:
        return found
    for level in (1, 3):
        found[f"zstd {level}"] = zstandard.ZstdCompressor(level=level).compress
    return found


def best_seconds(function: Callable[[bytes], bytes], data: bytes) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(REPEATS):
        started = time.perf_counter()
        size = len(function(data))
        times.append(time.perf_counter() - started)
    return min(times), size


def main() -> None:
    print("| answer | bytes | codec | compressed | ratio | time | pays off below |")
    print("|---|---|---|---|---|---|---|")
    for tokens, heads in [(1, 1), (2, 1), (3, 2), (5, 2), (8, 2), (12, 4), (32, 4), (128, 4),
                          (256, 12)]:  # fmt: skip
        data = answer(tokens, heads)
        for name, function in compressors().items():
            seconds, size = best_seconds(function, data)
            saved = len(data) - size
            # the link speed at which sending the saved bytes takes as long as compressing
            pays = saved * 8 / seconds / 1e6 if saved > 0 else 0.0
            print(
                f"| {heads}×{tokens}×{tokens} | {len(data):,} | {name} | {size:,} | "
                f"{len(data) / size:.2f} | {seconds * 1e6:,.0f} µs | {pays:,.0f} Mbit/s |"
            )


if __name__ == "__main__":
    main()
