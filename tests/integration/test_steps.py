"""Every step with its documented shape (the step registry, attention/steps.py), masks in
masked_scores, precision, metrics and the forms of `output.attention`, over real HTTP."""

from __future__ import annotations

import math
from typing import Any

import httpx
import numpy as np
import pytest

from tests.integration.api import JSON_FLOAT32_TOLERANCE, array, attend, only_result

pytestmark = pytest.mark.integration

STEP_NAMES = (
    "token_embeddings", "positional", "inputs", "q", "k", "v", "scores", "scaled_scores",
    "masked_scores", "attention", "head_outputs", "concat", "output",
)  # fmt: skip


def documented_shapes(
    *, queries: int, keys: int, d_model: int, heads: int, kv_heads: int
) -> dict[str, tuple[int, ...]]:
    """The registry's shape for one sequence; `keys` counts bias_k and the zero key."""
    L, S, H, H_kv, d = queries, keys, heads, kv_heads, d_model // heads
    return {
        "token_embeddings": (L, d_model), "positional": (L, d_model), "inputs": (L, d_model),
        "q": (H, L, d), "k": (H_kv, S, d), "v": (H_kv, S, d),
        "scores": (H, L, S), "scaled_scores": (H, L, S), "masked_scores": (H, L, S),
        "attention": (H, L, S), "head_outputs": (H, L, d), "concat": (L, H * d),
        "output": (L, d_model),
    }  # fmt: skip


SHAPE_CASES = {
    "self": ({"d_model": 16, "num_heads": 4}, 5, 5, 4),
    "gqa": ({"d_model": 16, "num_heads": 4, "num_kv_heads": 2}, 5, 5, 2),
    "multi_query": ({"d_model": 12, "num_heads": 3, "num_kv_heads": 1}, 5, 5, 1),
    "extra_keys": ({"d_model": 8, "num_heads": 2, "add_bias_kv": True, "add_zero_attn": True},
                   5, 7, 2),
    "rope_gqa": ({"d_model": 16, "num_heads": 4, "num_kv_heads": 2,
                  "positional_encoding": "rope"}, 5, 5, 2),
}  # fmt: skip


@pytest.mark.parametrize(
    ("config", "queries", "keys", "kv_heads"), SHAPE_CASES.values(), ids=SHAPE_CASES.keys()
)
def test_every_step_has_its_documented_shape(
    client: httpx.Client, config: dict[str, Any], queries: int, keys: int, kv_heads: int
) -> None:
    tokens = ["one", "two", "three", "four", "five"][:queries]
    result = only_result(
        client, {"sequences": [tokens], "config": config, "output": {"steps": "all"}}
    )

    expected = documented_shapes(
        queries=queries, keys=keys, d_model=config["d_model"], heads=config["num_heads"],
        kv_heads=kv_heads,
    )  # fmt: skip
    assert set(result["steps"]) == set(STEP_NAMES)
    assert {name: array(value).shape for name, value in result["steps"].items()} == expected


def test_cross_attention_steps_use_the_key_length(client: httpx.Client) -> None:
    body = {
        "sequences": [["a", "b"]],
        "key_sequences": [["c", "d", "e", "f", "g", "h"]],
        "config": {"d_model": 8, "num_heads": 2, "num_kv_heads": 1},
        "output": {"steps": "all"},
    }
    steps = only_result(client, body)["steps"]

    expected = documented_shapes(queries=2, keys=6, d_model=8, heads=2, kv_heads=1)
    assert {name: array(value).shape for name, value in steps.items()} == expected


def test_only_the_requested_steps_are_returned(client: httpx.Client) -> None:
    body = {"text": "a b c", "config": {"d_model": 8, "num_heads": 2},
            "output": {"steps": ["k", "q", "k"]}}  # fmt: skip

    assert set(only_result(client, body)["steps"]) == {"q", "k"}


def test_steps_chain_into_each_other(client: httpx.Client) -> None:
    """scaled = scores × scale, inputs = tokens + positions, concat = heads side by side, and
    query heads 0 and 1 of a GQA layer read the same K head."""
    body = {
        "text": "the man who passes the sentence",
        "config": {"d_model": 16, "num_heads": 4, "num_kv_heads": 2},
        "output": {"steps": "all"},
    }
    payload = attend(client, body)
    steps = {name: array(value) for name, value in payload["results"][0]["steps"].items()}
    scale = payload["config"]["scale"]

    assert scale == pytest.approx(1 / math.sqrt(4))
    tolerance = {"atol": 1e-5, "rtol": 0}
    np.testing.assert_allclose(steps["scaled_scores"], steps["scores"] * scale, **tolerance)
    np.testing.assert_allclose(
        steps["inputs"], steps["token_embeddings"] + steps["positional"], **tolerance
    )
    np.testing.assert_allclose(
        steps["concat"], steps["head_outputs"].transpose(1, 0, 2).reshape(6, 16), **tolerance
    )
    grouped_k = np.repeat(steps["k"], 2, axis=0)  # K head h // 2 serves query head h
    np.testing.assert_allclose(
        steps["scores"], steps["q"] @ grouped_k.transpose(0, 2, 1), atol=1e-4, rtol=0
    )
    np.testing.assert_allclose(steps["attention"].sum(axis=-1), 1.0, **tolerance)


def test_causal_masked_scores_are_null_above_the_diagonal(client: httpx.Client) -> None:
    body = {
        "text": "a b c d",
        "config": {"d_model": 8, "num_heads": 2, "causal": True},
        "output": {"steps": ["scaled_scores", "masked_scores"]},
    }
    result = only_result(client, body)
    masked = result["steps"]["masked_scores"]

    for head in masked:
        for query, row in enumerate(head):
            assert all(value is None for value in row[query + 1 :])
            assert all(value is not None for value in row[: query + 1])
    visible = np.tril(np.ones((4, 4), dtype=bool))
    np.testing.assert_array_equal(
        array(masked)[:, visible], array(result["steps"]["scaled_scores"])[:, visible]
    )
    assert np.all(np.triu(array(result["attention"]), 1) == 0)


def test_a_query_with_no_visible_key_gets_zero_weights_and_is_flagged(
    client: httpx.Client,
) -> None:
    body = {
        "sequences": [["a", "b", "c"]],
        "key_padding_mask": [[True, True, True]],
        "config": {"d_model": 8, "num_heads": 2},
        "output": {"steps": ["masked_scores", "head_outputs"]},
    }
    result = only_result(client, body)

    assert result["fully_masked_queries"] == [0, 1, 2]
    assert np.all(array(result["attention"]) == 0)
    assert np.all(array(result["steps"]["head_outputs"]) == 0)
    assert np.all(np.isnan(array(result["steps"]["masked_scores"])))


@pytest.mark.parametrize("attention", ["per_head", "average", "none"])
def test_fully_masked_queries_are_flagged_whatever_attention_is_returned(
    client: httpx.Client, attention: str
) -> None:
    """A window that ends before the keys do leaves the later queries without any key."""
    body = {
        "sequences": [["a", "b", "c", "d"]],
        "key_sequences": [["x"]],
        "config": {"d_model": 8, "num_heads": 2, "window": 2},
        "output": {"attention": attention},
    }

    assert only_result(client, body)["fully_masked_queries"] == [2, 3]


# -- output options ----------------------------------------------------------------------------

RECOMPUTE_TOLERANCE = 1e-5
"""Two requests compute the same numbers; on a GPU their last float32 bits may differ."""

PRECISION_BODY: dict[str, Any] = {
    "text": "the man who passes the sentence should swing the sword",
    "config": {"d_model": 16, "num_heads": 4},
    "output": {"steps": "all", "metrics": True},
}


def numbers(result: dict[str, Any]) -> list[tuple[str, Any]]:
    parts = [("output", result["output"]), ("attention", result["attention"])]
    parts += list(result["steps"].items())
    parts += [(name, value) for name, value in result["metrics"].items() if name != "top_key"]
    return parts


@pytest.mark.parametrize("precision", [0, 2, 4])
def test_precision_rounds_every_number_to_that_many_decimals(
    client: httpx.Client, precision: int
) -> None:
    full = only_result(client, PRECISION_BODY)
    rounded = only_result(
        client, {**PRECISION_BODY, "output": {**PRECISION_BODY["output"], "precision": precision}}
    )

    for (name, exact), (_, short) in zip(numbers(full), numbers(rounded), strict=True):
        exact_array, short_array = array(exact), array(short)
        # the nearest multiple of 10^-precision, give or take the two computations' rounding
        nearest = 0.5 * 10.0**-precision + RECOMPUTE_TOLERANCE
        np.testing.assert_allclose(short_array, exact_array, atol=nearest, rtol=0, err_msg=name)
        scaled = short_array * 10.0**precision
        finite = np.isfinite(scaled)
        np.testing.assert_allclose(
            scaled[finite], np.round(scaled[finite]), atol=1e-3, rtol=0, err_msg=name
        )


def test_metrics_summarise_the_returned_attention(client: httpx.Client) -> None:
    result = only_result(
        client,
        {
            "text": "the man who passes the sentence should swing",
            "config": {"d_model": 16, "num_heads": 4, "add_zero_attn": True},
            "output": {"metrics": True},
        },
    )
    weights = array(result["attention"])  # (H, L, S): 8 positioned keys, then the zero key
    metrics = result["metrics"]
    heads, length, keys = weights.shape

    entropy = array(metrics["entropy"])
    assert entropy.shape == (heads,)
    assert np.all(entropy >= 0)
    assert np.all(entropy <= math.log(keys) + JSON_FLOAT32_TOLERANCE)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(weights > 0, weights * np.log(weights), 0.0)
    np.testing.assert_allclose(entropy, -plogp.sum(axis=-1).mean(axis=-1), atol=1e-5)

    distance = np.abs(np.arange(length)[:, None] - np.arange(length)[None, :])
    expected_distance = (weights[..., :length] * distance).sum(axis=-1).mean(axis=-1)
    np.testing.assert_allclose(array(metrics["mean_distance"]), expected_distance, atol=1e-5)

    assert metrics["top_key"] == weights.argmax(axis=-1).tolist()


def test_average_attention_is_the_mean_of_the_heads(client: httpx.Client) -> None:
    body: dict[str, Any] = {"text": "the man who passes", "config": {"d_model": 16, "num_heads": 4}}
    per_head = array(only_result(client, body)["attention"])
    average = array(only_result(client, {**body, "output": {"attention": "average"}})["attention"])

    assert average.shape == (4, 4)
    np.testing.assert_allclose(average, per_head.mean(axis=0), atol=JSON_FLOAT32_TOLERANCE)


def test_attention_none_returns_no_weights_but_the_same_output(client: httpx.Client) -> None:
    body: dict[str, Any] = {"text": "the man who passes", "config": {"d_model": 16, "num_heads": 4}}
    with_weights = only_result(client, body)
    without = only_result(client, {**body, "output": {"attention": "none"}})

    assert without["attention"] is None
    assert without["metrics"] is None
    np.testing.assert_allclose(
        array(without["output"]), array(with_weights["output"]), atol=1e-5, rtol=0
    )


def test_the_response_echoes_the_resolved_configuration(client: httpx.Client) -> None:
    payload = attend(
        client, {"text": "a b", "config": {"d_model": 24, "num_heads": 6, "num_kv_heads": 3}}
    )

    config = payload["config"]
    assert (config["d_model"], config["num_heads"], config["num_kv_heads"]) == (24, 6, 3)
    assert config["head_dim"] == 4
    assert config["scale"] == pytest.approx(0.5)
    assert payload["meta"]["dtype"] == "float32"
    assert payload["meta"]["device"] == client.get("/info").json()["device"]
    assert payload["meta"]["elapsed_ms"] >= payload["meta"]["compute_ms"] >= 0
