"""`make bench` runs: its smoke mode, a few requests per case, end to end. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from benchmarks.cases import CASES, MSGPACK, select
from benchmarks.client import Load
from benchmarks.wrk import load_from
from tests.support.server import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_make_bench_runs_the_benchmark_and_make_serve_the_server_command() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "$(BIN)/python -m benchmarks.run" in makefile
    assert "$(BIN)/python -m app" in makefile


def test_smoke_run_measures_every_case_in_process_and_over_http(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # a loaded, shared machine: the run itself is ~1 minute
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    run = json.loads(out.read_text())
    assert {entry["case"] for entry in run["inprocess"]} == set(CASES)
    assert {(row["case"], row["concurrency"]) for row in run["rows"]} == {
        (name, concurrency) for name in CASES for concurrency in (1, 8)
    }
    for row in run["rows"]:
        assert row["errors"] == {}, row
        assert row["requests"] == row["concurrency"]
        assert row["response_bytes"] > 0
        assert row["p50_ms"] > 0
    assert {entry["path"] for entry in run["library"]} == {"need_weights", "trace"}
    assert len(run["encoders"]) == 4
    assert all(entry["response_bytes"] > 0 for entry in run["encoders"])
    assert "| case | client | conc |" in finished.stdout
    assert {(row["case"], row["concurrency"]) for row in run["peers"]} == {
        (name, concurrency) for name in ("small", "large") for concurrency in (1, 8)
    }
    assert all(row["baseline_rps"] > 0 and row["service_rps"] > 0 for row in run["peers"])
    assert "(BASELINE)" in finished.stdout
    if find_spec("transformers"):  # the decoders beside transformers eager, in process
        architectures = {row["architecture"] for row in run["decoders"]["rows"]}
        assert architectures == {"gpt2", "llama", "mistral", "qwen2"}
        assert "| architecture | case | in-process ms |" in finished.stdout


def test_default_cases_are_the_five_and_gpu_adds_the_long_sequence() -> None:
    assert [case.name for case in select(None, gpu=False)] == [
        "small", "large", "batch", "steps", "msgpack",
    ]  # fmt: skip
    gpu = {case.name: case for case in select(None, gpu=True)}
    assert (gpu["xl"].tokens, gpu["xl"].d_model, gpu["xl"].heads) == (2048, 512, 8)
    assert CASES["msgpack"].accept == MSGPACK
    assert [case.name for case in select("large,xl", gpu=False)] == ["large", "xl"]


def test_wrk_summary_becomes_a_load_with_its_percentiles() -> None:
    load = load_from(
        {"requests": 100, "duration_us": 2_000_000, "bytes": 1, "p50_us": 1500, "p99_us": 4000,
         "non2xx": 2, "connect": 0, "read": 1, "write": 0, "timeout": 0},
        concurrency=8,
    )  # fmt: skip
    assert isinstance(load, Load)
    assert load.ok == 98
    assert load.rps == pytest.approx(49.0)
    assert load.percentile_ms(50) == pytest.approx(1.5)
    assert load.percentile_ms(99) == pytest.approx(4.0)
    assert dict(load.errors) == {"read": 1}
