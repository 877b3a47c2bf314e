"""Bad settings stop `python -m app` in its parent, before any worker starts (issue 11, rows
13–15): one line per bad setting on stderr, naming the variable, the value and the rule, exit
2, no traceback. Before, a worker crashed on them, and uvicorn's parent restarted it forever."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from tests.support.server import REPO_ROOT, free_port

pytestmark = pytest.mark.integration

HANG_GUARD_S = 60.0  # a parent restarting crashed workers would run past it


def start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("ATTENTION_")}
    full_env = {
        **clean,
        "ATTENTION_HOST": "127.0.0.1",
        "ATTENTION_PORT": str(free_port()),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=REPO_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )


def assert_refused_at_start(run: subprocess.CompletedProcess[str], lines: list[str]) -> None:
    assert run.returncode == 2, run.stderr
    assert sorted(run.stderr.splitlines()) == sorted(lines)
    assert "Traceback" not in run.stderr + run.stdout
    assert "Started server process" not in run.stderr  # no worker, no server


def test_a_cuda_device_on_a_machine_without_one_stops_the_parent_with_exit_2() -> None:
    """Row 13: 2 workers and a device that is not there."""
    device = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"
    run = start({"ATTENTION_DEVICE": device, "ATTENTION_WORKERS": "2"})

    assert run.returncode == 2, run.stderr
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"ATTENTION_DEVICE={device}: ")
    assert "CUDA" in line
    assert "Traceback" not in run.stderr


def test_each_bad_setting_gets_one_line_naming_the_variable_the_value_and_the_rule() -> None:
    """Row 14: `ATTENTION_WORKERS=0`, `ATTENTION_MAX_TOKENS=-1` and others, all at once."""
    run = start({
        "ATTENTION_WORKERS": "0",
        "ATTENTION_MAX_TOKENS": "-1",
        "ATTENTION_PORT": "eighty",
        "ATTENTION_REQUEST_TIMEOUT_S": "0",
        "ATTENTION_LOG_LEVEL": "loud",
        "ATTENTION_DEVICE": "gpu",
    })  # fmt: skip

    assert_refused_at_start(
        run,
        [
            "ATTENTION_WORKERS=0: must be at least 1",
            "ATTENTION_MAX_TOKENS=-1: must be at least 1",
            "ATTENTION_PORT=eighty: must be a whole number",
            "ATTENTION_REQUEST_TIMEOUT_S=0: must be more than 0",
            "ATTENTION_LOG_LEVEL=loud: must be one of "
            "'critical', 'error', 'warning', 'info' or 'debug'",
            "ATTENTION_DEVICE=gpu: must be 'auto', 'cpu', 'cuda' or 'cuda:N'",
        ],
    )


@pytest.mark.parametrize("keys", [",", "key-one,", "key-one,,key-two"])
def test_an_empty_api_key_is_refused_at_start_not_authentication_turned_off(keys: str) -> None:
    """Row 15: `ATTENTION_API_KEYS=","` used to parse as no key at all."""
    run = start({"ATTENTION_API_KEYS": keys})

    assert_refused_at_start(
        run,
        [
            f"ATTENTION_API_KEYS={keys}: must not hold an empty entry "
            "(two commas, or one at either end)"
        ],
    )
