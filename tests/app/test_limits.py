from __future__ import annotations

from typing import Any

import pytest

from app.errors import TooLarge
from app.limits import Shape, check_limits, work_estimate
from app.schemas import AttentionRequest
from app.settings import Settings

SETTINGS = Settings(max_tokens=8, max_batch=2, max_d_model=128, max_heads=8, max_work=10**9)
SHAPE = Shape(batch=2, query_length=8, key_length=8)


def request(config: dict[str, Any] | None = None, **output: Any) -> AttentionRequest:
    return AttentionRequest.model_validate(
        {"text": "a", "config": config or {"d_model": 8, "num_heads": 2}, "output": output}
    )


def test_a_request_at_every_limit_passes() -> None:
    check_limits(request({"d_model": 128, "num_heads": 8, "kdim": 128, "vdim": 128}), SHAPE,
                 SETTINGS)  # fmt: skip


@pytest.mark.parametrize(
    ("batch", "queries", "keys", "message"),
    [
        (3, 1, 1, "batch size is 3, over the limit max_batch=2"),
        (1, 9, 9, "tokens per sequence is 9, over the limit max_tokens=8"),
        (1, 2, 9, "keys per sequence is 9, over the limit max_tokens=8"),
    ],
)
def test_a_shape_over_a_limit_is_too_large(
    batch: int, queries: int, keys: int, message: str
) -> None:
    with pytest.raises(TooLarge) as caught:
        check_limits(request(), Shape(batch, queries, keys), SETTINGS)

    assert caught.value.status_code == 413
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"d_model": 256, "num_heads": 2}, "config.d_model is 256, over the limit max_d_model=128"),
        ({"d_model": 8, "num_heads": 2, "kdim": 129}, "config.kdim is 129"),
        ({"d_model": 8, "num_heads": 2, "vdim": 129}, "config.vdim is 129"),
        ({"d_model": 72, "num_heads": 9}, "config.num_heads is 9, over the limit max_heads=8"),
    ],
)
def test_a_configuration_over_a_limit_is_too_large(config: dict[str, Any], message: str) -> None:
    with pytest.raises(TooLarge, match=message):
        check_limits(request(config), SHAPE, SETTINGS)


def test_the_work_estimate_counts_each_returned_attention_sized_matrix() -> None:
    config = {"d_model": 8, "num_heads": 2, "vocab_size": 1}
    module = 4 * 8 * 8 + 1 * 8
    per_head = 2 * 2 * 8 * 8  # B · H · L · S

    assert work_estimate(request(config, attention="none"), SHAPE) == per_head + module
    assert work_estimate(request(config), SHAPE) == 2 * per_head + module
    average = request(config, attention="average")  # H matrices averaged into one
    assert work_estimate(average, SHAPE) == int(1.5 * per_head) + module
    everything = request(config, steps="all")  # scores, scaled, masked, attention + the weights
    assert work_estimate(everything, SHAPE) == 6 * per_head + module
    small_steps = request(config, attention="none", steps=["q", "k", "v", "output"])
    assert work_estimate(small_steps, SHAPE) == per_head + module


def test_the_work_estimate_counts_the_modules_tables() -> None:
    base = {"d_model": 16, "num_heads": 2, "vocab_size": 10, "max_positions": 100}
    tiny = Shape(batch=1, query_length=1, key_length=1)
    none = {"attention": "none"}

    sinusoidal = work_estimate(request(base, **none), tiny)
    learned = work_estimate(request({**base, "positional_encoding": "learned"}, **none), tiny)
    wide_keys = work_estimate(request({**base, "kdim": 32}, **none), tiny)

    assert sinusoidal == 2 + 4 * 16 * 16 + 10 * 16
    assert learned - sinusoidal == 100 * 16
    assert wide_keys - sinusoidal == 4 * (32 * 32 - 16 * 16)


def test_work_over_max_work_names_the_shape_and_the_way_out() -> None:
    settings = Settings(max_work=1000)

    with pytest.raises(TooLarge) as caught:
        check_limits(request({"d_model": 8, "num_heads": 2}), SHAPE, settings)

    message = caught.value.message
    assert "B=2 × H=2 × L=8 × S=8" in message
    assert "max_work=1,000" in message
    assert "attention 'average' or 'none'" in message
