"""The BASELINE peers: the minimal app computes what the service computes; ratios are paired."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from app.main import create_app
from app.serving.settings import Settings
from benchmarks.baselines.minimal import app as minimal_app
from benchmarks.cases import SMALL
from benchmarks.client import Load
from benchmarks.peers import compare, table


def test_the_minimal_app_returns_the_services_numbers_for_the_small_case() -> None:
    with TestClient(create_app(Settings())) as service, TestClient(minimal_app) as minimal:
        ours = service.post("/attention", content=SMALL.body()).json()["results"][0]
        theirs = minimal.post("/attention", content=SMALL.body()).json()["results"][0]

    assert theirs["tokens"] == ours["tokens"]
    np.testing.assert_array_equal(np.array(theirs["attention"]), np.array(ours["attention"]))
    np.testing.assert_array_equal(np.array(theirs["output"]), np.array(ours["output"]))


def fixed_load(rps: float) -> Load:
    load = Load("fake", 1, seconds=1.0)
    load.summary = {"rps": rps, "p50": 1.0, "p99": 1.0}
    return load


def test_the_ratio_is_the_median_of_the_alternating_turns() -> None:
    turns = iter([100.0, 50.0, 30.0, 60.0, 90.0, 100.0])  # service, baseline, service, ...

    row = compare(lambda url, concurrency: fixed_load(next(turns)), 1, 2, "small", 8, rounds=3)

    assert (row.case, row.concurrency, row.rounds) == ("small", 8, 3)
    assert row.ratio == 0.9  # of 2.0, 0.5 and 0.9
    assert row.service_rps == 90.0
    assert row.baseline_rps == 60.0
    assert "(BASELINE)" in table([row])
