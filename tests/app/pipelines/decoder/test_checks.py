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
        ({"output": {"top_k": 4}}, "output"),
        ({"output": {"pool": 8}}, "output"),
        ({"config": {"dtype": "float64"}}, "config.dtype"),
        ({"text": ["a", "b"], "generate": {"max_new_tokens": 2}}, "generate"),
    ],
)
def test_what_a_decoder_cannot_take_is_a_422_naming_it(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        check_decoder_request(request(**fields))

    assert caught.value.field == field


def test_a_plain_decoder_request_passes() -> None:
    check_decoder_request(request(layers=[0], output={"attention": "average"}))
