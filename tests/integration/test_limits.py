"""Size limits over real HTTP: a server started with small ATTENTION_MAX_* settings answers 413,
names the setting that was passed, and goes on serving."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.api import assert_alive, attend, error_detail
from tests.integration.conftest import client_for
from tests.support.server import running_server

pytestmark = pytest.mark.integration

LIMITS = {
    "ATTENTION_MAX_TOKENS": "8",
    "ATTENTION_MAX_BATCH": "2",
    "ATTENTION_MAX_D_MODEL": "128",
    "ATTENTION_MAX_HEADS": "8",
    # two sequences of 8 tokens, d_model 8, 8 heads: the output alone is 128 numbers (≈ 2 kB of
    # JSON); the per-head weights and every step add 6,272 numbers, 15 bytes each at most
    "ATTENTION_MAX_RESPONSE_BYTES": "20000",
    "ATTENTION_MODULE_CACHE_BYTES": str(2**20),
    "ATTENTION_MAX_BODY_BYTES": "4096",
}
TINY = {"d_model": 8, "num_heads": 2, "vocab_size": 16}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with (
        running_server(env=LIMITS, log_dir=tmp_path_factory.mktemp("limited")) as server,
        client_for(server.base_url) as client,
    ):
        yield client


def too_large(client: httpx.Client, body: dict[str, Any]) -> str:
    detail = error_detail(client.post("/attention", json=body), 413)
    assert isinstance(detail, str)
    assert_alive(client)
    return detail


def tokens(count: int) -> list[str]:
    return [f"t{index}" for index in range(count)]


def test_info_reports_the_configured_limits(limited: httpx.Client) -> None:
    limits = limited.get("/info").json()["limits"]

    assert limits["max_tokens"] == 8
    assert limits["max_batch"] == 2
    assert limits["max_d_model"] == 128
    assert limits["max_heads"] == 8
    assert limits["max_response_bytes"] == 20000
    assert limits["max_body_bytes"] == 4096


def test_requests_at_every_limit_are_served(limited: httpx.Client) -> None:
    body = {"sequences": [tokens(8), tokens(8)], "config": {**TINY, "num_heads": 8},
            "output": {"attention": "none"}}  # fmt: skip

    assert len(attend(limited, body)["results"]) == 2


def test_a_sequence_over_max_tokens_is_a_413(limited: httpx.Client) -> None:
    detail = too_large(limited, {"sequences": [tokens(3), tokens(9)], "config": TINY})

    assert "tokens per sequence is 9" in detail
    assert "max_tokens=8" in detail


def test_keys_over_max_tokens_are_a_413(limited: httpx.Client) -> None:
    body = {"sequences": [tokens(2)], "key_sequences": [tokens(9)], "config": TINY}

    assert "max_tokens=8" in too_large(limited, body)


def test_extra_keys_count_towards_max_tokens(limited: httpx.Client) -> None:
    body = {"sequences": [tokens(8)], "config": {**TINY, "add_zero_attn": True}}

    assert "keys per sequence is 9" in too_large(limited, body)


def test_text_over_max_tokens_is_a_413(limited: httpx.Client) -> None:
    detail = too_large(limited, {"text": "one, two, three, four, five", "config": TINY})

    assert "tokens per sequence is 9" in detail


def test_a_batch_over_max_batch_is_a_413(limited: httpx.Client) -> None:
    detail = too_large(limited, {"sequences": [["a"], ["b"], ["c"]], "config": TINY})

    assert "batch size is 3" in detail
    assert "max_batch=2" in detail


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"d_model": 256, "num_heads": 2}, "config.d_model is 256"),
        ({"d_model": 8, "num_heads": 2, "kdim": 129}, "config.kdim is 129"),
        ({"d_model": 8, "num_heads": 2, "vdim": 200}, "config.vdim is 200"),
    ],
)
def test_widths_over_max_d_model_are_a_413(
    limited: httpx.Client, config: dict[str, Any], named: str
) -> None:
    detail = too_large(limited, {"sequences": [["a"]], "config": config})

    assert named in detail
    assert "max_d_model=128" in detail


def test_heads_over_max_heads_are_a_413(limited: httpx.Client) -> None:
    detail = too_large(limited, {"sequences": [["a"]], "config": {"d_model": 72, "num_heads": 9}})

    assert "config.num_heads is 9" in detail
    assert "max_heads=8" in detail


def test_the_returned_matrices_count_towards_max_response_bytes(limited: httpx.Client) -> None:
    config = {**TINY, "num_heads": 8}
    sequences = [tokens(8), tokens(8)]
    computing_only = {"sequences": sequences, "config": config, "output": {"attention": "none"}}
    returning_all = {**computing_only, "output": {"attention": "per_head", "steps": "all"}}

    assert attend(limited, computing_only)["results"]
    detail = too_large(limited, returning_all)
    assert "over the limit max_response_bytes=20,000" in detail
    assert "answer is estimated at" in detail


def test_a_module_larger_than_the_module_cache_is_refused(limited: httpx.Client) -> None:
    config = {"d_model": 128, "num_heads": 2, "vocab_size": 4096}  # 2 MiB of float32
    detail = too_large(limited, {"sequences": [["a"]], "config": config})

    assert "over the limit module_cache_bytes=1,048,576" in detail


def test_a_declared_body_over_max_body_bytes_is_a_413(limited: httpx.Client) -> None:
    detail = too_large(limited, {"text": "word " * 1000, "config": TINY})

    assert "max_body_bytes=4,096" in detail


def test_a_streamed_body_over_max_body_bytes_is_a_413(limited: httpx.Client) -> None:
    chunks = (b'{"text": "' + b"word " * 200 for _ in range(10))  # no Content-Length: chunked
    response = limited.post(
        "/attention", content=chunks, headers={"content-type": "application/json"}
    )

    assert "max_body_bytes=4,096" in error_detail(response, 413)
    assert_alive(limited)
