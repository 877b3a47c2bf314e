"""Size limits (413) of the default settings: each message names the value and the limit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import KEYS, assert_healthy
from tests.support.server import RunningServer

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
MAX_BODY = 16 * MiB


def tokens(count: int) -> list[int]:
    return [i % 1024 for i in range(count)]


LIMITS: list[tuple[str, dict[str, Any], str]] = [
    (
        "tokens",
        {"sequences": [tokens(32_769)]},
        "tokens per sequence is 32,769, over the limit max_tokens=32,768",
    ),
    (
        "keys",
        {"sequences": [tokens(4)], "key_sequences": [tokens(32_769)]},
        "keys per sequence is 32,769, over the limit max_tokens=32,768",
    ),
    ("batch", {"sequences": [[1]] * 65}, "batch size is 65, over the limit max_batch=64"),
    (
        "d_model",
        {"text": "a", "config": {"d_model": 4096}},
        "config.d_model is 4,096, over the limit max_d_model=2,048",
    ),
    (
        "kdim",
        {"text": "a", "config": {"kdim": 4096}},
        "config.kdim is 4,096, over the limit max_d_model=2,048",
    ),
    (
        "heads",
        {"text": "a", "config": {"d_model": 256, "num_heads": 128}},
        "config.num_heads is 128, over the limit max_heads=64",
    ),
]


@pytest.mark.parametrize(("what", "body", "message"), LIMITS, ids=[row[0] for row in LIMITS])
def test_a_size_over_its_limit_gets_413_naming_value_and_limit(
    live_server: RunningServer, what: str, body: dict[str, Any], message: str
) -> None:
    response = httpx.post(f"{live_server.base_url}/attention", json=body, timeout=60)

    assert response.status_code == 413, response.text
    assert response.json() == {"detail": message}


def test_the_work_estimate_gets_413_with_the_estimate_and_the_limit(
    live_server: RunningServer,
) -> None:
    body = {
        "sequences": [tokens(1024)] * 8,
        "config": {"d_model": 512, "num_heads": 16},
        "output": {"steps": ["scores", "attention"]},
    }
    response = httpx.post(f"{live_server.base_url}/attention", json=body, timeout=60)

    assert response.status_code == 413
    detail = response.json()["detail"]
    estimate = int(re.search(r"answer is estimated at ([\d,]+) bytes", detail)[1].replace(",", ""))  # type: ignore[index]
    # B·H·L·S numbers for each of the scores, the attention step and the per-head weights
    assert estimate >= 3 * 8 * 16 * 1024 * 1024 * 15
    assert "over the limit max_response_bytes=268,435,456" in detail
    assert "attention 'average' or 'none'" in detail  # and what to do about it


def test_a_declared_body_over_the_limit_gets_413_unparsed(
    live_server: RunningServer,
) -> None:
    response = httpx.post(
        f"{live_server.base_url}/attention",
        content=b" " * (MAX_BODY + 1),
        headers={"content-type": "application/json"},
        timeout=60,
    )

    assert response.status_code == 413
    assert response.json() == {
        "detail": "the body is 16,777,217 bytes, over the limit max_body_bytes=16,777,216"
    }
    assert response.headers["connection"] == "close"


def test_a_streamed_body_without_length_gets_413_once_past_the_limit(
    live_server: RunningServer,
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY // MiB + 1):
            yield b" " * MiB

    response = httpx.post(
        f"{live_server.base_url}/attention",
        content=chunks(),  # Transfer-Encoding: chunked, no Content-Length
        headers={"content-type": "application/json"},
        timeout=60,
    )

    assert response.status_code == 413
    assert response.json() == {
        "detail": "the body passed 16,777,216 bytes, over the limit max_body_bytes=16,777,216"
    }
    assert_healthy(live_server.base_url)


def test_a_body_just_under_the_limit_is_read(live_server: RunningServer) -> None:
    padding = b" " * (MAX_BODY - 64)
    body = b'{"text": "The man who passes the sentence"}' + padding
    response = httpx.post(
        f"{live_server.base_url}/attention",
        content=body[:MAX_BODY],
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("chunks", "size"),
    [(1, 70_000), (10, 7_000), (70, 1_000), (2, 65_536)],
    ids=["one part", "ten parts", "seventy parts", "the last part crosses"],
)
def test_a_streamed_body_gets_413_however_it_is_cut(
    keyed_server: RunningServer, chunks: int, size: int
) -> None:
    """Whether the limit is passed in the body's first, a middle or its last part: at once."""
    headers = {"content-type": "application/json", "authorization": f"Bearer {KEYS[0]}"}
    response = httpx.post(
        f"{keyed_server.base_url}/attention",
        content=(b" " * size for _ in range(chunks)),
        headers=headers,
        timeout=10,
    )

    assert response.status_code == 413
    assert "over the limit max_body_bytes=65,536" in response.json()["detail"]
