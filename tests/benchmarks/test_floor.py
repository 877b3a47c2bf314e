"""benchmarks/floor.py: both apps answer the case in process, and the figures are printed."""

from __future__ import annotations

import asyncio

import pytest
import torch

from benchmarks import floor
from benchmarks.cases import CASES


def test_both_apps_answer_the_small_case_through_asgi() -> None:
    floors = asyncio.run(floor.measure(CASES["small"], rounds=1, calls=3))

    assert [each.app for each in floors] == ["service", "minimal app (BASELINE)"]
    assert all(0 < each.best_us <= each.median_us for each in floors)


def test_the_run_prints_each_app_and_the_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    threads = str(torch.get_num_threads())  # the run sets torch's: keep this process's
    assert floor.main(["--rounds", "1", "--calls", "3", "--threads", threads]) == 0

    printed = capsys.readouterr().out
    assert "service" in printed
    assert "minimal app (BASELINE)" in printed
    assert "minimal app ÷ service" in printed
