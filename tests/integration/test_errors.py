"""Every way a request can be wrong: its status, a message that says what to change, and a
server that still answers /healthz afterwards. The client fixture fails any 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.api import SMALL, assert_alive, error_detail, validation_error

pytestmark = pytest.mark.integration


def rejected(client: httpx.Client, status: int, **request: Any) -> Any:
    """POST /attention, require `status` and a JSON error body, then require a live server."""
    response = client.post("/attention", **request)
    detail = error_detail(response, status)
    assert_alive(client)
    return detail


def invalid(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/attention", json=body)
    item = validation_error(response)
    assert_alive(client)
    return item


# -- configuration ----------------------------------------------------------------------------


def test_heads_that_do_not_divide_d_model_name_both_values(client: httpx.Client) -> None:
    item = invalid(client, {"text": "a b", "config": {"d_model": 64, "num_heads": 10}})

    assert item["loc"][-1] == "num_heads"
    assert item["loc"] == ["body", "config", "num_heads"]
    assert "num_heads" in item["msg"]
    assert "64" in item["msg"]
    assert "10" in item["msg"]


def test_kv_heads_that_do_not_divide_the_heads_are_refused(client: httpx.Client) -> None:
    item = invalid(client, {"text": "a", "config": {"d_model": 16, "num_heads": 4,
                                                    "num_kv_heads": 3}})  # fmt: skip

    assert item["loc"] == ["body", "config", "num_kv_heads"]
    assert "num_kv_heads=3" in item["msg"]
    assert "num_heads=4" in item["msg"]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"d_model": 0}, "d_model"),
        ({"scale": 0}, "scale"),
        ({"window": 0}, "window"),
        ({"dropout": 1.0}, "dropout"),
        ({"seed": -1}, "seed"),
        ({"positional_encoding": "fourier"}, "positional_encoding"),
        ({"dtype": "float16"}, "dtype"),
    ],
)
def test_out_of_range_config_values_point_at_their_field(
    client: httpx.Client, config: dict[str, Any], field: str
) -> None:
    item = invalid(client, {"text": "a", "config": {**SMALL, **config}})

    assert item["loc"] == ["body", "config", field]


def test_rope_needs_an_even_head_dim(client: httpx.Client) -> None:
    config = {"d_model": 9, "num_heads": 3, "positional_encoding": "rope"}
    item = invalid(client, {"text": "a", "config": config})

    assert item["loc"] == ["body", "config", "positional_encoding"]
    assert "head_dim=3" in item["msg"]


# -- inputs -----------------------------------------------------------------------------------


def test_embeddings_of_the_wrong_width_name_the_expected_width(client: httpx.Client) -> None:
    body = {"embeddings": [[[0.5] * 8], [[0.5] * 7]], "config": SMALL}
    item = invalid(client, body)

    assert item["loc"] == ["body", "embeddings", 1]
    assert "(1, 7)" in item["msg"]
    assert "width 8" in item["msg"]


def test_key_embeddings_of_the_wrong_width_name_kdim(client: httpx.Client) -> None:
    body = {"embeddings": [[[0.5] * 8]], "key_embeddings": [[[0.5] * 5]],
            "config": {**SMALL, "kdim": 6}}  # fmt: skip
    item = invalid(client, body)

    assert item["loc"] == ["body", "key_embeddings", 0]
    assert "width 6" in item["msg"]


def test_ragged_rows_inside_one_sequence_are_refused(client: httpx.Client) -> None:
    item = invalid(client, {"embeddings": [[[0.5] * 8, [0.5] * 7]], "config": SMALL})

    assert item["loc"][:3] == ["body", "embeddings", 0]


def test_an_attn_mask_of_the_wrong_shape_names_both_shapes(client: httpx.Client) -> None:
    body = {"sequences": [["a", "b", "c"]], "attn_mask": [[True, False]], "config": SMALL}
    item = invalid(client, body)

    assert item["loc"] == ["body", "attn_mask"]
    assert "(1, 2)" in item["msg"]
    assert "(3, 3)" in item["msg"]


def test_a_key_padding_mask_of_the_wrong_length_names_the_expected_length(
    client: httpx.Client,
) -> None:
    body = {"sequences": [["a", "b", "c"]], "key_padding_mask": [[True, False]], "config": SMALL}
    item = invalid(client, body)

    assert item["loc"] == ["body", "key_padding_mask", 0]
    assert "has 2 entries; expected 3" in item["msg"]


def test_a_key_padding_mask_needs_one_row_per_sequence(client: httpx.Client) -> None:
    body = {"sequences": [["a"], ["b"]], "key_padding_mask": [[False]], "config": SMALL}
    item = invalid(client, body)

    assert item["loc"] == ["body", "key_padding_mask"]
    assert "1 rows" in item["msg"]


def test_token_ids_outside_the_vocabulary_point_at_the_token(client: httpx.Client) -> None:
    item = invalid(client, {"sequences": [[1, 2], [3, 2000]], "config": SMALL})

    assert item["loc"] == ["body", "sequences", 1, 1]
    assert "vocab_size=1024" in item["msg"]


@pytest.mark.parametrize("source", ["sequences", "embeddings", "text"])
def test_an_empty_query_source_is_named(client: httpx.Client, source: str) -> None:
    item = invalid(client, {source: [], "config": SMALL})

    assert item["loc"] == ["body", source]
    assert item["msg"].startswith(source)


def test_a_sequence_without_tokens_is_named(client: httpx.Client) -> None:
    item = invalid(client, {"sequences": [["a"], []], "config": SMALL})

    assert item["loc"] == ["body", "sequences", 1]


def test_one_key_sequence_per_query_sequence(client: httpx.Client) -> None:
    body = {"sequences": [["a"]], "key_sequences": [["b"], ["c"]], "config": SMALL}
    item = invalid(client, body)

    assert item["loc"] == ["body", "key_sequences"]
    assert "2 sequences" in item["msg"]


def test_value_embeddings_need_the_key_lengths(client: httpx.Client) -> None:
    body = {"embeddings": [[[0.0] * 8]], "key_embeddings": [[[0.0] * 8]],
            "value_embeddings": [[[0.0] * 8, [0.0] * 8]], "config": SMALL}  # fmt: skip
    item = invalid(client, body)

    assert item["loc"] == ["body", "value_embeddings"]


def test_key_sequences_cannot_feed_keys_of_another_width(client: httpx.Client) -> None:
    body = {"sequences": [["a"]], "key_sequences": [["b"]], "config": {**SMALL, "kdim": 4}}
    item = invalid(client, body)

    assert item["loc"] == ["body", "key_sequences"]
    assert "kdim=4" in item["msg"]


@pytest.mark.parametrize(
    "sources",
    [
        {},
        {"text": "a", "sequences": [["a"]]},
        {"text": "a", "embeddings": [[[0.0] * 8]]},
        {"sequences": [["a"]], "embeddings": [[[0.0] * 8]]},
    ],
    ids=["none", "text_and_sequences", "text_and_embeddings", "sequences_and_embeddings"],
)
def test_exactly_one_of_sequences_text_or_embeddings(
    client: httpx.Client, sources: dict[str, Any]
) -> None:
    item = invalid(client, {**sources, "config": SMALL})

    assert item["loc"] == ["body"]
    assert "exactly one of sequences, text or embeddings" in item["msg"]
    for name in sources:
        assert name in item["msg"]


def test_a_sequence_mixing_strings_and_ids_is_refused(client: httpx.Client) -> None:
    item = invalid(client, {"sequences": [["a", 1]], "config": SMALL})

    assert item["loc"][:3] == ["body", "sequences", 0]


def test_nan_is_not_a_number_the_service_takes(client: httpx.Client) -> None:
    content = b'{"embeddings": [[[NaN, 0, 0, 0, 0, 0, 0, 0]]], "config": {"d_model": 8}}'
    detail = rejected(client, 422, content=content, headers={"content-type": "application/json"})

    assert detail[0]["type"] == "finite_number"


# -- parameters -------------------------------------------------------------------------------

EXPECTED_LISTING = (
    "in_proj_weight (24, 8), in_proj_bias (24,), out_proj.weight (8, 8), out_proj.bias (8,)"
)


def parameters(**overrides: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "in_proj_weight": [[0.1] * 8] * 24,
        "in_proj_bias": [0.0] * 24,
        "out_proj.weight": [[0.1] * 8] * 8,
        "out_proj.bias": [0.0] * 8,
    }
    state.update(overrides)
    return {name: value for name, value in state.items() if value is not None}


def test_parameters_with_missing_keys_list_what_is_expected(client: httpx.Client) -> None:
    body = {"text": "a b", "parameters": parameters(**{"out_proj.bias": None}), "config": SMALL}
    item = invalid(client, body)

    assert item["loc"] == ["body", "parameters", "out_proj.bias"]
    assert "missing out_proj.bias" in item["msg"]
    assert EXPECTED_LISTING in item["msg"]


def test_parameters_with_unexpected_keys_list_what_is_expected(client: httpx.Client) -> None:
    body = {"text": "a b", "parameters": parameters(bias_k=[[[0.0] * 8]]), "config": SMALL}
    item = invalid(client, body)

    assert "unexpected bias_k" in item["msg"]
    assert EXPECTED_LISTING in item["msg"]


def test_parameters_of_the_wrong_shape_name_both_shapes(client: httpx.Client) -> None:
    body = {"text": "a b", "parameters": parameters(in_proj_bias=[0.0] * 23), "config": SMALL}
    item = invalid(client, body)

    assert item["loc"] == ["body", "parameters", "in_proj_bias"]
    assert "has shape (23,); expected (24,)" in item["msg"]
    assert EXPECTED_LISTING in item["msg"]


@pytest.mark.parametrize("value", [[[0.1, 0.2], [0.3]], "weights", {"rows": 3}])
def test_parameters_that_are_not_arrays_of_numbers_are_refused(
    client: httpx.Client, value: Any
) -> None:
    body = {"text": "a b", "parameters": parameters(in_proj_weight=value), "config": SMALL}
    item = invalid(client, body)

    assert item["loc"] == ["body", "parameters", "in_proj_weight"]
    assert "not an array of numbers" in item["msg"]


# -- the request model ------------------------------------------------------------------------


def test_unknown_step_names_get_one_error_at_their_index(client: httpx.Client) -> None:
    response = client.post(
        "/attention", json={"text": "a", "config": SMALL, "output": {"steps": ["q", "keys"]}}
    )
    items = error_detail(response, 422)

    assert len(items) == 1
    assert items[0]["loc"] == ["body", "output", "steps", 1]
    assert "'masked_scores'" in items[0]["msg"]
    assert_alive(client)


def test_steps_as_a_string_must_be_all(client: httpx.Client) -> None:
    item = invalid(client, {"text": "a", "config": SMALL, "output": {"steps": "everything"}})

    assert item["loc"] == ["body", "output", "steps"]
    assert "'all'" in item["msg"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"text": "a", "colour": "red"}, ["body", "colour"]),
        ({"text": "a", "config": {"heads": 4}}, ["body", "config", "heads"]),
        ({"text": "a", "output": {"weights": True}}, ["body", "output", "weights"]),
    ],
)
def test_unknown_fields_are_refused_where_they_are(
    client: httpx.Client, body: dict[str, Any], loc: list[str]
) -> None:
    item = invalid(client, body)

    assert item["loc"] == loc
    assert item["type"] == "extra_forbidden"


def test_a_body_that_is_not_an_object_is_refused(client: httpx.Client) -> None:
    item = invalid(client, [1, 2])  # type: ignore[arg-type]

    assert item["loc"] == ["body"]


# -- the HTTP layer -----------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b'{"text": "a",', b"text=a", b"\xff\xfe"])
def test_a_body_that_is_not_json_is_a_400(client: httpx.Client, content: bytes) -> None:
    detail = rejected(client, 400, content=content, headers={"content-type": "application/json"})

    assert "not valid JSON" in detail


def test_an_empty_body_is_a_400(client: httpx.Client) -> None:
    detail = rejected(client, 400, content=b"", headers={"content-type": "application/json"})

    assert "empty" in detail


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_is_a_415(client: httpx.Client, content_type: str) -> None:
    detail = rejected(client, 415, content=b'{"text": "a"}', headers={"content-type": content_type})

    assert content_type in detail
    assert "application/json" in detail


def test_json_with_a_charset_is_json(client: httpx.Client) -> None:
    response = client.post(
        "/attention",
        content=b'{"text": "a", "config": {"d_model": 8, "num_heads": 2}}',
        headers={"content-type": "application/json; charset=utf-8"},
    )

    assert response.status_code == 200


def test_get_on_attention_is_a_405(client: httpx.Client) -> None:
    response = client.get("/attention")

    assert response.status_code == 405
    assert_alive(client)


def test_an_unknown_path_is_a_json_404(client: httpx.Client) -> None:
    detail = error_detail(client.get("/attention/v2"), 404)

    assert detail == "Not Found"
