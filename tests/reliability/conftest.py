"""Helpers of the reliability tests: servers with their own settings, probes, metric reading."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest

from tests.support.server import RunningServer, running_server

StartServer = Callable[[Mapping[str, str]], AbstractContextManager[RunningServer]]


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> StartServer:
    """`with start_server({"ATTENTION_...": "..."}) as server:` a real `python -m app`."""
    log_dir = tmp_path_factory.mktemp("servers")

    def start(env: Mapping[str, str]) -> AbstractContextManager[RunningServer]:
        return running_server({"ATTENTION_LOG_LEVEL": "warning", **env}, log_dir=log_dir)

    return start


KEYS = ("first-key-0c8d", "second-key-77ab")
ORIGIN = "https://explorer.example"
KEYED_ENV = {
    "ATTENTION_API_KEYS": ",".join(KEYS),
    "ATTENTION_CORS_ORIGINS": ORIGIN,
    # small limits: most requests the fuzzer generates pass them and compute, quickly
    "ATTENTION_MAX_TOKENS": "64",
    "ATTENTION_MAX_BATCH": "4",
    "ATTENTION_MAX_D_MODEL": "128",
    "ATTENTION_MAX_HEADS": "8",
    "ATTENTION_MAX_RESPONSE_BYTES": "20000000",
    "ATTENTION_MAX_BODY_BYTES": "65536",
}


@pytest.fixture(scope="package")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """API keys, one CORS origin and small limits: the auth and fuzzing tests share it."""
    env = {"ATTENTION_LOG_LEVEL": "warning", **KEYED_ENV}
    with running_server(env, log_dir=tmp_path_factory.mktemp("keyed")) as server:
        yield server


def slow_body(tokens: int = 2048, d_model: int = 2048) -> dict[str, Any]:
    """A large but allowed computation: 1.5 to 4 s on two cores (the output is L × d_model)."""
    return {
        "sequences": [[i % 1024 for i in range(tokens)]],
        "config": {"d_model": d_model, "num_heads": 4},
        "output": {"attention": "none"},
    }


SMALL_BODY: dict[str, Any] = {"text": "The man who passes the sentence", "config": {"d_model": 16}}


def assert_healthy(base_url: str, headers: Mapping[str, str] | None = None) -> None:
    """The probes answer and a small computation still gives 200."""
    with httpx.Client(base_url=base_url, timeout=60, headers=headers) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        response = client.post("/attention", json=SMALL_BODY)
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["tokens"][0] == "The"


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`, from the exposition text."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(\{.*\})? (\S+)", line)
        if not match or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match[3])
    return total


def scrape(base_url: str, headers: Mapping[str, str] | None = None) -> str:
    response = httpx.get(f"{base_url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.text


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def in_flight(base_url: str) -> float:
    """Requests being answered now, the scrape itself included."""
    return metric(scrape(base_url), "attention_http_requests_in_flight")
