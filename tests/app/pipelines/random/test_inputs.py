from __future__ import annotations

from typing import Any

import pytest
import torch

from app.http.errors import library_error_location
from app.http.schemas import AttentionRequest
from app.pipelines.random.inputs import check_config_fits, needs_weights, padded_vectors
from app.pipelines.random.labels import request_labels
from attention import InputError, ShapeError


def request(**fields: Any) -> AttentionRequest:
    return AttentionRequest.model_validate({"text": "a b", **fields})


def test_ragged_vectors_are_padded_with_zeros() -> None:
    padded = padded_vectors([[[1.0, 2.0]], [[3.0, 4.0], [5.0, 6.0]]], "embeddings", 2,
                            torch.float32)  # fmt: skip

    assert padded.tolist() == [[[1.0, 2.0], [0.0, 0.0]], [[3.0, 4.0], [5.0, 6.0]]]
    assert padded.dtype == torch.float32


def test_vectors_of_another_width_name_the_sequence_and_the_width() -> None:
    with pytest.raises(ShapeError, match=r"embeddings\[1\] has shape \(1, 3\)") as caught:
        padded_vectors([[[1.0, 2.0]], [[1.0, 2.0, 3.0]]], "embeddings", 2, torch.float32)

    assert caught.value.field == "embeddings.1"


def test_labels_of_embeddings_are_their_positions() -> None:
    labels = request_labels(AttentionRequest.model_validate({
        "embeddings": [[[0.0], [0.0]]], "key_embeddings": [[[0.0]] * 3],
    }))  # fmt: skip

    assert labels.queries == [["[0]", "[1]"]]
    assert labels.keys == [["[0]", "[1]", "[2]"]]


@pytest.mark.parametrize(
    ("fields", "needed"),
    [
        ({}, True),
        ({"output": {"attention": "average"}}, True),
        ({"output": {"attention": "none"}}, False),
        ({"output": {"attention": "none", "metrics": True}}, True),
        ({"output": {"attention": "none"}, "config": {"causal": True}}, False),
        # these can leave a query without any key, which only the weights reveal
        ({"output": {"attention": "none"}, "key_padding_mask": [[True, False]]}, True),
        ({"output": {"attention": "none"}, "attn_mask": [[True, False], [False, True]]}, True),
        ({"output": {"attention": "none"}, "config": {"window": 1}}, True),
    ],
)
def test_weights_are_computed_when_returned_or_needed_to_flag_masked_queries(
    fields: dict[str, Any], needed: bool
) -> None:
    assert needs_weights(request(**fields)) is needed


def test_a_scale_past_float32_is_refused_as_an_embedding_past_it_is() -> None:
    with pytest.raises(InputError, match=r"config.scale is 1e\+300, which does not fit float32"
                       ) as caught:  # fmt: skip
        check_config_fits(request(config={"scale": 1e300}))

    assert library_error_location(caught.value.field) == ["body", "config", "scale"]


def test_a_scale_within_the_dtype_passes() -> None:
    check_config_fits(request(config={"scale": 1e300, "dtype": "float64"}))
    check_config_fits(request(config={"scale": 3e38}))
