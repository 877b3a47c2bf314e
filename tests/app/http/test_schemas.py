from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.http.schemas import AttentionRequest, OutputOptions
from attention import STEPS


def errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        AttentionRequest.model_validate(body)
    return caught.value.errors(include_url=False)


def test_steps_all_means_every_step_in_pipeline_order() -> None:
    assert OutputOptions(steps="all").step_names() == STEPS


def test_requested_steps_keep_their_order_without_repeats() -> None:
    options = OutputOptions.model_validate({"steps": ["k", "q", "k"]})

    assert options.step_names() == ("k", "q")


def test_each_unknown_step_gets_one_error_at_its_index() -> None:
    found = errors({"text": "a", "output": {"steps": ["q", "keys", "k", "vals"]}})

    assert [error["loc"] for error in found] == [
        ("output", "steps", 1), ("output", "steps", 3),
    ]  # fmt: skip
    assert all(error["type"] == "literal_error" for error in found)


def test_a_string_of_steps_other_than_all_is_one_error() -> None:
    found = errors({"text": "a", "output": {"steps": "some"}})

    assert [(error["loc"], error["msg"]) for error in found] == [
        (("output", "steps"), "Input should be 'all'"),
    ]


def test_the_schema_still_offers_a_list_or_all() -> None:
    schema = OutputOptions.model_json_schema()["properties"]["steps"]

    assert {"const": "all", "type": "string"} in schema["anyOf"]
    listed = next(option for option in schema["anyOf"] if option.get("type") == "array")
    assert listed["items"]["enum"] == list(STEPS)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": "a", "key_sequences": [["b"]], "key_embeddings": [[[0.0]]]},
         "give key_sequences or key_embeddings, not both"),
        ({"text": "a", "value_embeddings": [[[0.0]]]}, "value_embeddings needs key_embeddings"),
    ],
)  # fmt: skip
def test_keys_come_from_one_source(body: dict[str, Any], message: str) -> None:
    assert message in errors(body)[0]["msg"]


def test_numbers_must_be_finite() -> None:
    found = errors({"embeddings": [[[float("nan")]]]})

    assert found[0]["type"] == "finite_number"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"truncate": "yes"}, ("truncate",)),
        ({"config": {"causal": "yes"}}, ("config", "causal")),
        ({"config": {"bias": 1}}, ("config", "bias")),
        ({"output": {"metrics": "true"}}, ("output", "metrics")),
    ],
)
def test_a_boolean_must_be_true_or_false_not_a_word_or_a_number(
    body: dict[str, Any], loc: tuple[str, ...]
) -> None:
    (error,) = errors({"text": "a", **body})

    assert error["loc"] == loc
    assert error["type"] == "bool_type"
