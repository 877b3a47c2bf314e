"""What a decoder refuses before anything is loaded or tokenized."""

from __future__ import annotations

from typing import Any

import pytest

from app.http.schemas import AttentionRequest
from app.pipelines.decoder.checks import check_decoder_request
from attention import InputError


def request(**fields: Any) -> AttentionRequest:
    return AttentionRequest.model_validate({"model": "tiny-gpt2", "text": "a b", **fields})


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"output": {"analysis": True}}, "output.analysis"),
        ({"output": {"embedding": True}}, "output.embedding"),
        ({"config": {"dtype": "float64"}}, "config.dtype"),
        ({"config": {"dtype": "bfloat16"}}, "config.dtype"),
        ({"text": ["a", "b"], "generate": {"max_new_tokens": 2}}, "generate"),
    ],
)
def test_what_a_decoder_cannot_take_is_a_422_naming_it(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        check_decoder_request(request(**fields))

    assert caught.value.field == field


@pytest.mark.parametrize(
    "output",
    [
        {"attention": "average"},
        {"heads": [1], "queries": [0], "top_k": 2, "pool": 4, "dtype": "float16"},
    ],
)
def test_a_plain_or_shaped_decoder_request_passes(output: dict[str, Any]) -> None:
    check_decoder_request(request(layers=[0], output=output))
