from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.http.errors import library_error_location, pydantic_error_items
from app.http.schemas import AttentionRequest


@pytest.mark.parametrize(
    ("field", "loc"),
    [
        (None, ["body"]),
        ("num_heads", ["body", "config", "num_heads"]),
        ("num_kv_heads", ["body", "config", "num_kv_heads"]),
        ("positional_encoding", ["body", "config", "positional_encoding"]),
        ("query", ["body", "embeddings"]),
        ("key", ["body", "key_embeddings"]),
        ("value", ["body", "value_embeddings"]),
        ("dtype", ["body", "config", "dtype"]),
        ("device", ["body"]),
        ("sequences.1.0", ["body", "sequences", 1, 0]),
        ("embeddings.2", ["body", "embeddings", 2]),
        ("key_padding_mask.0", ["body", "key_padding_mask", 0]),
        ("attn_mask", ["body", "attn_mask"]),
        ("parameters.bias_k", ["body", "parameters", "bias_k"]),
        ("parameters.out_proj.weight", ["body", "parameters", "out_proj.weight"]),
        ("truncate", ["body", "truncate"]),
        ("generate", ["body", "generate"]),
        ("generate.max_new_tokens", ["body", "generate", "max_new_tokens"]),
    ],
)
def test_library_fields_become_request_locations(field: str | None, loc: list[str | int]) -> None:
    assert library_error_location(field) == loc


@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"null", "null"), (b"[]", "an array"), (b"3", "a number"), (b'"a"', "a string")],
)
def test_a_body_that_is_not_an_object_is_told_to_be_one(body: bytes, kind: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AttentionRequest.model_validate_json(body)

    assert pydantic_error_items(caught.value) == [
        {
            "loc": ["body"],
            "msg": f"the body must be a JSON object, not {kind}",
            "type": "model_type",
        }
    ]
