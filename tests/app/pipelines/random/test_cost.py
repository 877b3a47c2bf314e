from __future__ import annotations

from typing import Any

import pytest

from app.http.encoding import JSON, MSGPACK
from app.http.errors import TooLarge
from app.http.schemas import AttentionRequest
from app.pipelines.cost import (
    ITEM_BYTES,
    JSON_NUMBER_BYTES,
    Estimate,
    check_estimate,
    check_text,
    held_item_bytes,
    number_bytes,
)
from app.pipelines.random.cost import Shape, check_limits, check_module, random_estimate
from app.pipelines.random.inputs import library_config
from app.serving.settings import Settings
from attention.cost import parameter_count

SETTINGS = Settings(max_tokens=8, max_batch=2, max_d_model=128, max_heads=8)
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


def estimate(request: AttentionRequest, media_type: str = JSON, *, cached: bool = True) -> Estimate:
    config = library_config(request)
    return random_estimate(request, SHAPE, config, media_type, module_cached=cached)


def test_each_returned_matrix_adds_its_numbers_to_the_answer() -> None:
    per_head = 2 * 2 * 8 * 8  # B · H · L · S
    none = estimate(request(attention="none")).response_bytes
    weights = estimate(request()).response_bytes
    scores = estimate(request(attention="none", steps=["scores"])).response_bytes

    assert weights - none == per_head * JSON_NUMBER_BYTES["float32"]
    assert scores - none == per_head * JSON_NUMBER_BYTES["float32"]


def test_the_answer_is_sized_for_its_encoding_dtype_and_precision() -> None:
    json32 = estimate(request()).response_bytes
    msgpack32 = estimate(request(), MSGPACK).response_bytes
    json64 = estimate(request({"d_model": 8, "num_heads": 2, "dtype": "float64"})).response_bytes
    rounded = estimate(request(precision=3)).response_bytes

    assert msgpack32 < rounded < json32 < json64
    assert number_bytes(MSGPACK, "float64", None) == 8
    assert number_bytes(JSON, "float32", 3) == 3 + 8


def test_bfloat16_computes_in_two_bytes_and_answers_in_float32() -> None:
    config = {"d_model": 8, "num_heads": 2}
    float32 = estimate(request(config))
    half = estimate(request({**config, "dtype": "bfloat16"}))

    assert half.response_bytes == float32.response_bytes  # the answer's arrays are float32
    assert number_bytes(MSGPACK, "bfloat16", None) == 4
    assert number_bytes(JSON, "bfloat16", None) == JSON_NUMBER_BYTES["float32"]
    # each cut number is held twice while it is converted: 2 bytes, then 4
    assert held_item_bytes(ITEM_BYTES["bfloat16"]) == 6
    assert held_item_bytes(ITEM_BYTES["float32"]) == 4


def test_a_module_not_yet_built_counts_towards_the_peak() -> None:
    config = {"d_model": 8, "num_heads": 2, "vocab_size": 100}
    cached = estimate(request(config)).peak_bytes
    building = estimate(request(config), cached=False).peak_bytes

    assert building - cached == parameter_count(library_config(request(config))) * 4


def test_an_answer_over_max_response_bytes_names_the_estimate_and_the_way_out() -> None:
    settings = Settings(max_response_bytes=1000)

    with pytest.raises(TooLarge) as caught:
        check_estimate(estimate(request()), settings, "ask for less")

    message = caught.value.message
    assert "over the limit max_response_bytes=1,000" in message
    assert "answer is estimated at" in message
    assert message.endswith("; ask for less")


def test_a_peak_over_max_request_bytes_is_too_large() -> None:
    with pytest.raises(TooLarge, match="over the limit max_request_bytes=1,000"):
        check_estimate(
            Estimate(peak_bytes=1001, response_bytes=1), Settings(max_request_bytes=1000), ""
        )


def test_a_module_larger_than_the_module_cache_is_refused_before_it_is_built() -> None:
    # the attack's config: 23,000 × 2,048 float64 numbers, 377 MB
    config = library_config(request({"d_model": 2048, "num_heads": 1, "vocab_size": 23000}))

    with pytest.raises(TooLarge, match="over the limit module_cache_bytes=104,857,600"):
        check_module(config, "float64", Settings(module_cache_bytes=100 * 2**20))
    check_module(config, "float32", Settings(module_cache_bytes=400 * 2**20))


def test_text_is_counted_in_characters_before_tokenizing() -> None:
    long = AttentionRequest.model_validate({"text": ["ab", "x" * 99]})

    with pytest.raises(
        TooLarge, match=r"text is 101 characters, over the limit max_text_chars=100"
    ):
        check_text(long, Settings(max_text_chars=100))


def test_a_long_string_token_names_its_place() -> None:
    sequences = AttentionRequest.model_validate(
        {"sequences": [["a"]], "key_sequences": [["b", "c" * 11]]}
    )

    with pytest.raises(TooLarge, match=r"key_sequences\.0\.1 is a token of 11 characters, over "
                       r"the limit max_token_chars=10"):  # fmt: skip
        check_text(sequences, Settings(max_token_chars=10))
