"""The decoder benchmark runs: tiny models, one length, two runs."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")


def test_the_smoke_run_times_every_architecture() -> None:
    from benchmarks.decoders import run

    rows = run([16], runs=1, new_tokens=2, smoke=True)
    assert {row["architecture"] for row in rows} == {"gpt2", "llama", "mistral", "qwen2"}
    assert all(row["ours_ms"] > 0 and row["transformers_ms"] > 0 for row in rows)
