"""Every input form of POST /attention, cross-attention, and ragged batches, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from tests.integration.api import SMALL, array, attend, only_result

pytestmark = pytest.mark.integration

RAGGED_TOLERANCE = 1e-5
"""A sequence computed inside a padded batch against the same sequence alone: float32 matrix
products of different shapes may round differently in the last bits."""

SENTENCE = ["The", "man", "who", "passes", "the", "sentence", "should", "swing", "the", "sword"]


def vectors(seed: int, *shape: int) -> list[Any]:
    values: list[Any] = np.random.default_rng(seed).normal(size=shape).round(4).tolist()
    return values


# -- the query sources -------------------------------------------------------------------------


def test_string_sequences_give_unpadded_output_and_per_head_weights(client: httpx.Client) -> None:
    result = only_result(client, {"sequences": [SENTENCE], "config": {"d_model": 16}})

    assert result["tokens"] == SENTENCE
    assert result["key_tokens"] == SENTENCE
    assert array(result["output"]).shape == (10, 16)
    weights = array(result["attention"])
    assert weights.shape == (4, 10, 10)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-6)
    assert result["fully_masked_queries"] == []


def test_integer_ids_index_one_table_so_a_repeated_id_repeats_its_vector(
    client: httpx.Client,
) -> None:
    body = {"sequences": [[5, 9, 5]], "config": SMALL, "output": {"steps": ["token_embeddings"]}}
    result = only_result(client, body)

    assert result["tokens"] == [5, 9, 5]
    embeddings = array(result["steps"]["token_embeddings"])
    assert embeddings.shape == (3, 8)
    np.testing.assert_array_equal(embeddings[0], embeddings[2])
    assert not np.allclose(embeddings[0], embeddings[1])


def test_text_is_split_into_words_and_punctuation(client: httpx.Client) -> None:
    result = only_result(client, {"text": "Hello, world! It's here.", "config": SMALL})

    assert result["tokens"] == ["Hello", ",", "world", "!", "It", "'", "s", "here", "."]


def test_text_gives_the_numbers_of_its_tokens_sent_as_sequences(client: httpx.Client) -> None:
    from_text = attend(client, {"text": ["The man, who", "swings."], "config": SMALL})
    tokens = [["The", "man", ",", "who"], ["swings", "."]]
    from_tokens = attend(client, {"sequences": tokens, "config": SMALL})

    assert [result["tokens"] for result in from_text["results"]] == tokens
    assert from_text["results"] == from_tokens["results"]


def test_a_string_token_has_one_vector_wherever_it_appears(client: httpx.Client) -> None:
    steps = {"steps": ["token_embeddings"]}
    first = only_result(client, {"sequences": [["the", "sword"]], "config": SMALL, "output": steps})
    second = only_result(
        client, {"sequences": [["sword", "of", "fire"]], "config": SMALL, "output": steps}
    )

    np.testing.assert_array_equal(
        array(first["steps"]["token_embeddings"])[1], array(second["steps"]["token_embeddings"])[0]
    )


def test_embeddings_are_the_inputs_when_positional_encoding_is_none(client: httpx.Client) -> None:
    embeddings = vectors(0, 1, 4, 8)
    body = {
        "embeddings": embeddings,
        "config": {**SMALL, "positional_encoding": "none"},
        "output": {"steps": ["token_embeddings", "positional", "inputs"]},
    }
    result = only_result(client, body)

    assert result["tokens"] == ["[0]", "[1]", "[2]", "[3]"]
    np.testing.assert_allclose(array(result["steps"]["inputs"]), embeddings[0], atol=1e-6)
    np.testing.assert_array_equal(array(result["steps"]["positional"]), np.zeros((4, 8)))


def test_embeddings_get_the_sinusoidal_encoding_added(client: httpx.Client) -> None:
    embeddings = vectors(1, 1, 3, 8)
    body = {
        "embeddings": embeddings,
        "config": {**SMALL, "positional_encoding": "sinusoidal"},
        "output": {"steps": ["positional", "inputs"]},
    }
    steps = only_result(client, body)["steps"]

    positional = array(steps["positional"])
    np.testing.assert_allclose(positional[0], [0, 1] * 4, atol=1e-7)  # sin 0, cos 0
    np.testing.assert_allclose(array(steps["inputs"]), embeddings[0] + positional, atol=1e-6)


# -- cross-attention ---------------------------------------------------------------------------


def test_key_sequences_give_cross_attention_over_their_tokens(client: httpx.Client) -> None:
    body = {
        "sequences": [["who", "swings"]],
        "key_sequences": [["the", "man", "swings", "the"]],
        "config": SMALL,
        "output": {"steps": ["q", "k", "v"]},
    }
    result = only_result(client, body)

    assert result["tokens"] == ["who", "swings"]
    assert result["key_tokens"] == ["the", "man", "swings", "the"]
    assert array(result["attention"]).shape == (2, 2, 4)
    assert array(result["steps"]["q"]).shape == (2, 2, 4)
    assert array(result["steps"]["k"]).shape == (2, 4, 4)
    assert array(result["steps"]["v"]).shape == (2, 4, 4)


def test_key_and_value_embeddings_of_their_own_widths(client: httpx.Client) -> None:
    """Keys decide the weights and values only the output, each at its own width."""
    config = {**SMALL, "kdim": 6, "vdim": 10, "positional_encoding": "none"}
    body = {
        "embeddings": vectors(2, 1, 3, 8),
        "key_embeddings": vectors(3, 1, 5, 6),
        "value_embeddings": vectors(4, 1, 5, 10),
        "config": config,
        "output": {"steps": ["k", "v", "output"]},
    }
    result = only_result(client, body)
    other_values = only_result(client, {**body, "value_embeddings": vectors(5, 1, 5, 10)})

    assert result["key_tokens"] == ["[0]", "[1]", "[2]", "[3]", "[4]"]
    assert array(result["steps"]["k"]).shape == (2, 5, 4)
    assert array(result["steps"]["v"]).shape == (2, 5, 4)
    assert array(result["output"]).shape == (3, 8)
    assert other_values["attention"] == result["attention"]
    assert not np.allclose(array(other_values["output"]), array(result["output"]))


def test_key_embeddings_alone_serve_as_values_too(client: httpx.Client) -> None:
    keys = vectors(6, 1, 4, 8)
    body = {"embeddings": vectors(7, 1, 2, 8), "key_embeddings": keys, "config": SMALL}
    with_values = {**body, "value_embeddings": keys}

    assert attend(client, body)["results"] == attend(client, with_values)["results"]


# -- ragged batches ----------------------------------------------------------------------------

RAGGED = [["The", "man", "who", "passes", "the"], ["sentence"], ["should", "swing", "the"]]
RAGGED_CONFIGS = {
    "plain": {},
    "bias_kv_and_zero_attn": {"add_bias_kv": True, "add_zero_attn": True},
    "causal_gqa": {"causal": True, "num_heads": 4, "num_kv_heads": 2},
    "window_learned": {"window": 2, "positional_encoding": "learned"},
    "alibi": {"positional_encoding": "alibi"},
    "rope": {"positional_encoding": "rope"},
}


def assert_same_result(batched: dict[str, Any], alone: dict[str, Any]) -> None:
    assert batched["tokens"] == alone["tokens"]
    assert batched["key_tokens"] == alone["key_tokens"]
    assert batched["fully_masked_queries"] == alone["fully_masked_queries"]
    assert batched["steps"].keys() == alone["steps"].keys()
    pairs = [("output", batched["output"], alone["output"])]
    pairs += [("attention", batched["attention"], alone["attention"])]
    pairs += [(name, batched["steps"][name], alone["steps"][name]) for name in alone["steps"]]
    pairs += [
        (name, batched["metrics"][name], alone["metrics"][name]) for name in alone["metrics"] or {}
    ]
    for name, ours, theirs in pairs:
        ours_array, theirs_array = array(ours), array(theirs)
        assert ours_array.shape == theirs_array.shape, name
        np.testing.assert_allclose(
            ours_array, theirs_array, atol=RAGGED_TOLERANCE, rtol=0, err_msg=name
        )


@pytest.mark.parametrize("config", RAGGED_CONFIGS.values(), ids=RAGGED_CONFIGS.keys())
def test_each_sequence_of_a_ragged_batch_equals_it_sent_alone(
    client: httpx.Client, config: dict[str, Any]
) -> None:
    full = {**SMALL, **config}
    output = {"steps": "all", "metrics": True}
    batch = attend(client, {"sequences": RAGGED, "config": full, "output": output})["results"]

    assert [len(result["tokens"]) for result in batch] == [5, 1, 3]
    for sequence, batched in zip(RAGGED, batch, strict=True):
        alone = only_result(client, {"sequences": [sequence], "config": full, "output": output})
        assert_same_result(batched, alone)


def test_extra_keys_come_after_each_sequences_own_keys(client: httpx.Client) -> None:
    config = {**SMALL, "add_bias_kv": True, "add_zero_attn": True}
    results = attend(client, {"sequences": [["a", "b", "c"], ["d"]], "config": config})["results"]

    assert results[1]["key_tokens"] == ["d", "<bias_k>", "<zero_attn>"]
    assert array(results[1]["attention"]).shape == (2, 1, 3)
    assert array(results[0]["attention"]).shape == (2, 3, 5)


def test_ragged_cross_attention_matches_each_pair_alone(client: httpx.Client) -> None:
    queries = [["a", "b"], ["c", "d", "e", "f"]]
    keys = [["k", "l", "m", "n", "o"], ["p"]]
    config = {**SMALL, "add_zero_attn": True}
    output = {"steps": ["k", "masked_scores", "attention"], "metrics": True}
    batch = attend(
        client, {"sequences": queries, "key_sequences": keys, "config": config, "output": output}
    )["results"]

    for query, key, batched in zip(queries, keys, batch, strict=True):
        alone = only_result(
            client,
            {"sequences": [query], "key_sequences": [key], "config": config, "output": output},
        )
        assert_same_result(batched, alone)


def test_ragged_embeddings_match_each_sequence_alone(client: httpx.Client) -> None:
    rows = [vectors(8, 2, 8), vectors(9, 4, 8)]
    config = {**SMALL, "add_bias_kv": True}
    output = {"steps": "all", "metrics": True}
    batch = attend(client, {"embeddings": rows, "config": config, "output": output})["results"]

    for sequence, batched in zip(rows, batch, strict=True):
        alone = only_result(client, {"embeddings": [sequence], "config": config, "output": output})
        assert_same_result(batched, alone)
