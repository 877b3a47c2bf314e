"""The decoder benchmark runs: tiny models, one length, one run, in process and over HTTP."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")
ARCHITECTURES = {"gpt2", "llama", "mistral", "qwen2"}


def test_the_smoke_run_times_every_architecture() -> None:
    from benchmarks.decoders import run

    rows = run([16], runs=1, new_tokens=2, smoke=True)
    assert {row["architecture"] for row in rows} == ARCHITECTURES
    assert all(row["ours_ms"] > 0 and row["transformers_ms"] > 0 for row in rows)


def test_the_smoke_run_over_http_serves_every_request_of_every_architecture() -> None:
    from benchmarks.decoders import http, http_bodies, tables

    rows = http(runs=1, new_tokens=2, smoke=True)
    cases = [case for case, _ in http_bodies("llama", [16], 2)]
    assert [(row["architecture"], row["case"]) for row in rows] == [
        (architecture, case) for architecture in ("gpt2", "llama", "mistral", "qwen2")
        for case in cases
    ]  # fmt: skip
    assert all(row["response_bytes"] > 0 and row["http_ms"] > 0 for row in rows)
    table = tables({"rows": [], "http": rows})
    assert table.count("\n") == len(rows) + 2  # the blank line, the header, the rule
