"""output.heads, queries, top_k, pool and dtype on a decoder through POST /attention in-process:
the prompt's weights and each generated token's rows against the dense answer of the same
request, shaped here in numpy (tests/app/test_routes_shaping.py's reference)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest

from app.http.encoding import MSGPACK
from app.pipelines.decoder.run import QUERY_AXIS
from tests.app.test_routes_attention import serving
from tests.app.test_routes_shaping import assert_fields, expected_fields, post
from tests.support.tiny_decoder import write_tiny_decoder

pytest.importorskip("transformers")
pytestmark = pytest.mark.anyio
Array = np.ndarray[Any, Any]

MODEL = "tiny-llama"  # 2 layers, 4 heads on 2 K/V heads, 64 positions
PROMPT = "once upon a time there was an old king"
LONG_PROMPT = " ".join(["the old king and his three daughters lived in a castle by the sea ."] * 4)
GENERATE = {"max_new_tokens": 6}
RESPONSE_LIMIT = 200_000  # bytes: the long prompt's dense answer is over it, its top-k is not
OPTIONS: list[dict[str, Any]] = [
    {"heads": [3, 1]},
    {"queries": {"start": 2, "stop": 40}},
    {"queries": [0, 5, 2]},
    {"top_k": 3},
    {"pool": 4},
    {"attention": "average", "top_k": 2},
    {"heads": [2, 0], "queries": {"start": 1, "stop": 8}, "top_k": 4, "pool": 3},
    {"attention": "average", "heads": [1, 2], "queries": [3, 4], "top_k": 2, "pool": 2},
]


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    root = tmp_path_factory.mktemp("models")
    write_tiny_decoder(root / MODEL, "llama-gqa-wide-heads-biases")
    async with serving(models_dir=str(root), max_response_bytes=RESPONSE_LIMIT) as (_, client):
        yield client


def per_layer(dense: Array, options: dict[str, Any]) -> dict[str, Any]:
    """`expected_fields` of each layer of (Nl, H, L, S), stacked on a leading layer axis."""
    layers = [expected_fields(layer, options) for layer in dense]
    return {name: _stack([fields[name] for fields in layers]) for name in layers[0]}


def _stack(values: list[Any]) -> Any:
    first = values[0]
    if isinstance(first, np.ndarray):
        return np.stack(values)
    if isinstance(first, dict):
        return {part: _stack([value[part] for value in values]) for part in first}
    return first  # None, or the bounds and query positions every layer shares


def assert_shaped(result: dict[str, Any], expected: dict[str, Any]) -> None:
    """`assert_fields`, top-k keys compared where their weight is above 0: a causal row's
    masked keys tie at 0, and which of them fill a top-k is arbitrary."""
    top = expected["top_k"]
    if top is not None:
        keys, attended = np.asarray(result["top_k"]["keys"]), top["weights"] > 1e-6
        assert np.array_equal(keys[attended], top["keys"][attended])
        expected = expected | {"top_k": {part: top[part] for part in ("weights", "mass")}}
    assert_fields(result, expected)


def generated_expected(rows: Array, options: dict[str, Any]) -> dict[str, Any]:
    """A new token's rows (Nl, H, S) shaped as one query per layer, its query axis dropped:
    queries do not apply, pool blocks the keys only."""
    lone = {name: value for name, value in options.items() if name != "queries"}
    fields = per_layer(rows[:, :, None, :], lone)
    for name in ("top_k", "pool"):
        if fields[name] is not None:
            fields[name].pop("query_bounds", None)
            fields[name] = {
                part: value if part == "key_bounds" else np.squeeze(value, QUERY_AXIS[part])
                for part, value in fields[name].items()
            }
    if fields["attention"] is not None:
        fields["attention"] = np.squeeze(fields["attention"], QUERY_AXIS["attention"])
    return fields


@pytest.mark.parametrize("options", OPTIONS)
async def test_the_prompt_is_shaped_like_the_dense_reference(
    client: httpx.AsyncClient, options: dict[str, Any]
) -> None:
    body = {"model": MODEL, "text": [PROMPT, "the king and his three daughters"]}
    dense = await post(client, body)
    shaped = await post(client, {**body, "output": options})
    for result, reference in zip(shaped["results"], dense["results"], strict=True):
        assert_shaped(result, per_layer(np.array(reference["attention"]), options))
        np.testing.assert_allclose(result["output"], reference["output"], atol=2e-6)


@pytest.mark.parametrize("options", OPTIONS)
async def test_each_new_token_is_shaped_like_the_dense_reference(
    client: httpx.AsyncClient, options: dict[str, Any]
) -> None:
    body = {"model": MODEL, "text": PROMPT, "generate": GENERATE}
    dense = (await post(client, body))["results"][0]
    shaped = (await post(client, {**body, "output": options}))["results"][0]
    assert shaped["generation"]["token_ids"] == dense["generation"]["token_ids"]
    assert_shaped(shaped, per_layer(np.array(dense["attention"]), options))
    generation = shaped["generation"]
    for index, rows in enumerate(dense["generation"]["attention"]):
        expected = generated_expected(np.array(rows), options)
        token = {
            name: None if generation[name] is None else generation[name][index]
            for name in ("attention", "top_k", "pool")
        }
        assert_shaped(token, expected)


async def test_float16_arrays_in_msgpack(client: httpx.AsyncClient) -> None:
    body = {"model": MODEL, "text": PROMPT, "generate": GENERATE}
    half = await post(client, {**body, "output": {"dtype": "float16", "top_k": 2}}, accept=MSGPACK)
    full = await post(client, {**body, "output": {"top_k": 2}}, accept=MSGPACK)
    result, reference = half["results"][0], full["results"][0]
    assert result["top_k"]["weights"].dtype == np.float16
    assert result["generation"]["top_k"][0]["weights"].dtype == np.float16
    np.testing.assert_allclose(result["top_k"]["weights"], reference["top_k"]["weights"], atol=1e-3)


async def test_a_long_prompt_with_top_k_or_pool_is_served_where_dense_is_refused(
    client: httpx.AsyncClient,
) -> None:
    body = {"model": MODEL, "text": LONG_PROMPT}
    refused = await client.post("/attention", json=body)
    assert refused.status_code == 413
    assert "max_response_bytes" in refused.text
    assert "output.top_k" in refused.text
    for options in ({"top_k": 2}, {"pool": 8}):
        answer = await post(client, {**body, "output": options})
        assert len(answer["results"][0]["tokens"]) == 61  # <s> and 4 × 15 words


async def test_a_head_or_query_out_of_range_is_422_naming_it(client: httpx.AsyncClient) -> None:
    for options, field, message in (
        ({"heads": [4]}, "output.heads", "output.heads has 4, but there are 4 heads (0..3)"),
        ({"queries": [10]}, "output.queries", "output.queries has 10, but there are 10 queries"),
    ):
        body = {"model": MODEL, "text": PROMPT, "output": options, "generate": GENERATE}
        response = await client.post("/attention", json=body)
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert ".".join(str(part) for part in error["loc"][1:]) == field
        assert message in error["msg"]
