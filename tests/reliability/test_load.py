"""The load script, short: twice the saturation for a few seconds, only 200 and 429 back."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks import load
from tests.reliability.conftest import StartServer, assert_healthy
from tests.support.server import REPO_ROOT

SERVER_ENV = {"ATTENTION_MAX_CONCURRENCY": "1", "ATTENTION_MAX_QUEUE": "2"}


@pytest.mark.integration
def test_twice_the_saturation_gets_only_200_and_429(start_server: StartServer) -> None:
    with start_server(SERVER_ENV) as server:
        command = [
            sys.executable, "-m", "benchmarks.load", "--url", server.base_url,
            "--duration", "4", "--warmup", "2", "--pid", str(server.process.pid), "--json",
        ]  # fmt: skip
        result = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        assert_healthy(server.base_url)
    report = json.loads(result.stdout)

    assert result.returncode == 0, report["failures"]
    assert report["concurrency"] == 2 * (1 + 2)
    assert set(report["statuses"]) == {"200", "429"}  # saturated, and still serving
    assert report["errors"] == {}
    assert report["p50_ms"] <= report["p99_ms"]
    assert abs(report["rss_change"]) <= load.RSS_TOLERANCE


def test_the_load_script_only_drives_loopback_servers() -> None:
    load.check_loopback("http://127.0.0.1:8000")
    load.check_loopback("http://localhost:8000")
    load.check_loopback("http://[::1]:8000")
    with pytest.raises(SystemExit, match="only drives a server on this machine"):
        load.check_loopback("http://example.com")
    with pytest.raises(SystemExit, match="only drives a server on this machine"):
        load.check_loopback("http://10.0.0.1:8000")


def test_the_load_script_is_bounded_in_time_and_clients() -> None:
    with pytest.raises(SystemExit):
        load.parse_args(["--duration", "601"])
    with pytest.raises(SystemExit):
        load.parse_args(["--concurrency", "100000"])


def test_the_verdict_names_every_broken_invariant() -> None:
    phase = load.Phase()
    phase.statuses.update({200: 10, 429: 5, 503: 1})
    phase.errors.update({"ConnectError": 2})

    failures = load.judge(phase, rss_before=100.0, rss_after=120.0)

    assert len(failures) == 3
    assert "503" in failures[0]
    assert "ConnectError" in failures[1]
    assert "100.0 to 120.0 MiB" in failures[2]
