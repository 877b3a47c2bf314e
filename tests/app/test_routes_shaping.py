"""output.heads, queries, top_k, pool and dtype through POST /attention in-process, for both model
kinds: every combination against the dense answer of the same request, shaped here in numpy."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import ormsgpack
import pytest
from fastapi import FastAPI

from app.http.encoding import MSGPACK, decode_msgpack_arrays
from app.http.schemas import AttentionRequest
from app.pipelines.cost import check_estimate
from app.pipelines.random import ADVICE
from app.pipelines.random.cost import Shape, random_estimate
from app.pipelines.random.inputs import library_config
from app.serving.settings import Settings
from attention import multi_head
from tests.app.test_routes_attention import serving

pytestmark = pytest.mark.anyio
Array = np.ndarray[Any, Any]

RANDOM = {"sequences": [[f"t{i}" for i in range(9)], [f"u{i}" for i in range(6)]],
          "config": {"d_model": 16, "num_heads": 4}}  # fmt: skip
HEADS: list[list[int] | None] = [None, [3, 1]]
QUERIES: list[Any] = [None, {"start": 2, "stop": 20}, [0, 5]]
TOP_K: list[int | None] = [None, 3]
POOL: list[int | None] = [None, 4]
ATTENTION = ["per_head", "average"]
COMBINATIONS = list(itertools.product(HEADS, QUERIES, TOP_K, POOL, ATTENTION))


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with serving() as pair:
        yield pair


@pytest.fixture(scope="module")
def client(served: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return served[1]


async def post(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> Any:
    response = await client.post("/attention", json=body, headers=headers)
    assert response.status_code == 200, response.text
    if response.headers["content-type"] == MSGPACK:
        return decode_msgpack_arrays(ormsgpack.unpackb(response.content))
    return response.json()


def bounds(length: int, cells: int) -> list[int]:
    blocks = min(cells, length)
    return [index * length // blocks for index in range(blocks + 1)]


def expected_fields(dense: Array, options: dict[str, Any]) -> dict[str, Any]:
    """The shaped fields of one (H, L, S) dense matrix, computed plainly in numpy."""
    heads = options.get("heads") or list(range(dense.shape[0]))
    queries = options.get("queries")
    length = dense.shape[1]
    if isinstance(queries, dict):
        rows = list(range(queries["start"], min(queries["stop"], length)))
    else:
        rows = queries if queries is not None else list(range(length))
    chosen = dense[heads][:, rows]
    if options.get("attention") == "average":
        chosen = chosen.mean(axis=0, keepdims=True)
    fields: dict[str, Any] = {"attention": None, "top_k": None, "pool": None}
    if queries is not None:
        fields["queries"] = rows
    if options.get("top_k") is None and options.get("pool") is None:
        fields["attention"] = chosen
    if options.get("top_k") is not None:
        order = np.argsort(-chosen, axis=-1, kind="stable")[..., : options["top_k"]]
        top = np.take_along_axis(chosen, order, axis=-1)
        fields["top_k"] = {"keys": order, "weights": top, "mass": top.sum(axis=-1)}
    if options.get("pool") is not None:
        row_bounds, key_bounds = (
            bounds(len(rows), options["pool"]),
            bounds(dense.shape[2], options["pool"]),
        )
        grid = [[chosen[:, a:b, c:d] for c, d in itertools.pairwise(key_bounds)]
                for a, b in itertools.pairwise(row_bounds)]  # fmt: skip
        fields["pool"] = {
            "max": np.stack(
                [np.stack([cell.max(axis=(1, 2)) for cell in line], -1) for line in grid], -2
            ),
            "mean": np.stack(
                [np.stack([cell.mean(axis=(1, 2)) for cell in line], -1) for line in grid], -2
            ),
            # a range: token positions; a list: indices into it (docs/architecture.md)
            "query_bounds": row_bounds
            if isinstance(queries, list)
            else [*(rows[r] for r in row_bounds[:-1]), rows[-1] + 1],
            "key_bounds": key_bounds,
        }
    if options.get("attention") == "average":
        fields = squeeze_heads(fields)
    return fields


def squeeze_heads(fields: dict[str, Any]) -> dict[str, Any]:
    def squeeze(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return value[0]
        if isinstance(value, dict):
            return {key: squeeze(item) for key, item in value.items()}
        return value

    return {key: squeeze(value) for key, value in fields.items()}


def assert_fields(result: dict[str, Any], expected: dict[str, Any], atol: float = 2e-6) -> None:
    for name, value in expected.items():
        actual = result.get(name)
        if value is None:
            assert actual is None, name
        elif isinstance(value, dict):
            for part, array in value.items():
                got = actual[part]
                if part == "keys":
                    assert np.array_equal(np.asarray(got), array), (name, part)
                elif part.endswith("bounds"):
                    assert list(got) == list(array), (name, part)
                else:
                    np.testing.assert_allclose(np.asarray(got, float), array, atol=atol)
        else:
            np.testing.assert_allclose(np.asarray(actual, float), value, atol=atol)


@pytest.mark.parametrize("metrics", [False, True], ids=["blocked", "dense-pass"])
@pytest.mark.parametrize(("heads", "queries", "top_k", "pool", "attention"), COMBINATIONS)
async def test_the_random_model_shapes_like_the_dense_reference(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    heads: list[int] | None,
    queries: Any,
    top_k: int | None,
    pool: int | None,
    attention: str,
    metrics: bool,
) -> None:
    # blocks of 2 queries: the blocked pass runs several blocks on these short sequences
    monkeypatch.setattr(multi_head, "query_block_rows", lambda *_: 2)
    dense = await post(client, RANDOM)
    options = {"heads": heads, "queries": queries, "top_k": top_k, "pool": pool,
               "attention": attention, "metrics": metrics}  # fmt: skip
    shaped = await post(client, {**RANDOM, "output": options})
    for result, reference in zip(shaped["results"], dense["results"], strict=True):
        assert_fields(result, expected_fields(np.array(reference["attention"]), options))
        np.testing.assert_allclose(result["output"], reference["output"], atol=2e-6)


async def test_float16_arrays_in_msgpack_and_float32_numbers_in_json(
    client: httpx.AsyncClient,
) -> None:
    body = {**RANDOM, "output": {"dtype": "float16", "top_k": 2}}
    packed = await post(client, body, accept=MSGPACK)
    full = await post(client, {**body, "output": {"top_k": 2}}, accept=MSGPACK)
    first, reference = packed["results"][0], full["results"][0]
    assert first["output"].dtype == np.float16
    assert reference["output"].dtype == np.float32
    assert first["top_k"]["weights"].dtype == np.float16
    assert first["top_k"]["keys"].dtype == np.int32
    np.testing.assert_allclose(first["top_k"]["weights"], reference["top_k"]["weights"], atol=1e-3)
    as_json = await post(client, body)
    np.testing.assert_allclose(as_json["results"][0]["output"], reference["output"], atol=1e-6)


BAD_OPTIONS = [
    ({"heads": [4]}, "output.heads", "output.heads has 4, but there are 4 heads (0..3)"),
    ({"queries": [9]}, "output.queries", "output.queries has 9, but there are 9 queries"),
    ({"queries": {"start": 9, "stop": 10}}, "output.queries.start", "the sequence has 9 queries"),
    ({"queries": {"start": 3, "stop": 3}}, "output.queries", "stop (3) must be greater"),
    ({"top_k": 0}, "output.top_k", "greater than or equal to 1"),
    ({"top_k": 1025}, "output.top_k", "less than or equal to 1024"),
    ({"pool": 2000}, "output.pool", "less than or equal to 1024"),
    ({"heads": []}, "output.heads", "at least 1 item"),
    ({"queries": []}, "output.queries", "at least 1 item"),
    ({"dtype": "float64"}, "output.dtype", "'float32' or 'float16'"),
    ({"attention": "none", "top_k": 2}, "output", "need attention 'per_head' or 'average'"),
]


@pytest.mark.parametrize(("options", "field", "message"), BAD_OPTIONS)
async def test_a_bad_option_is_422_naming_the_field_and_the_limit(
    client: httpx.AsyncClient, options: dict[str, Any], field: str, message: str
) -> None:
    response = await client.post("/attention", json={**RANDOM, "output": options})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert ".".join(str(part) for part in error["loc"][1:]).startswith(field), error
    assert message in error["msg"]


LONG = 32_768


def long_request(output: dict[str, Any]) -> dict[str, Any]:
    return {"sequences": [list(range(LONG))], "output": output,
            "config": {"d_model": 16, "num_heads": 1}}  # fmt: skip


async def test_32k_tokens_dense_are_refused_by_the_default_limits(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/attention", json=long_request({}))
    assert response.status_code == 413
    assert "over the limit max_response_bytes" in response.json()["detail"]
    assert "output.top_k or output.pool" in response.json()["detail"]
    assert "B=1 × H=1 × L=32768 × S=32768" in response.json()["detail"]


@pytest.mark.parametrize("output", [{"top_k": 8}, {"pool": 256}, {"top_k": 8, "pool": 64}])
def test_32k_tokens_top_k_or_pooled_fit_the_default_limits(output: dict[str, Any]) -> None:
    """The estimate the route checks (the run itself: benchmarks/shaping.py)."""
    request = AttentionRequest.model_validate(long_request(output))
    config = library_config(request)
    shape = Shape(batch=1, query_length=LONG, key_length=LONG)
    estimate = random_estimate(request, shape, config, MSGPACK, module_cached=False)
    check_estimate(estimate, Settings(), ADVICE)  # no 413
    assert estimate.response_bytes < 8 * 2**20
    assert estimate.peak_bytes < 1 * 2**30


# -- the pretrained encoder --------------------------------------------------------------


@pytest.fixture(scope="module")
async def encoder(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[httpx.AsyncClient]:
    if find_spec("safetensors") is None or find_spec("tokenizers") is None:
        pytest.skip("safetensors and tokenizers build the tiny model folder")
    from tests.support.tiny_bert import write_tiny_bert

    folder: Path = write_tiny_bert(tmp_path_factory.mktemp("models") / "Tiny-BERT")
    async with serving(model_path=str(folder)) as (_, client):
        yield client


TEXT = "the man who swings the sword . the man"
ENCODER_COMBINATIONS = list(
    itertools.product([None, [1]], [None, {"start": 1, "stop": 6}], TOP_K, POOL, ATTENTION)
)


@pytest.mark.parametrize(("heads", "queries", "top_k", "pool", "attention"), ENCODER_COMBINATIONS)
async def test_the_encoder_shapes_every_layer_like_the_dense_reference(
    encoder: httpx.AsyncClient,
    heads: list[int] | None,
    queries: Any,
    top_k: int | None,
    pool: int | None,
    attention: str,
) -> None:
    body = {"text": TEXT, "model": "tiny-bert"}
    (dense,) = (await post(encoder, body))["results"]
    options = {"heads": heads, "queries": queries, "top_k": top_k, "pool": pool,
               "attention": attention}  # fmt: skip
    (result,) = (await post(encoder, {**body, "output": options}))["results"]
    layers = np.array(dense["attention"])  # (Nl, H, L, L)
    per_layer = [expected_fields(layer, options) for layer in layers]
    expected: dict[str, Any] = {}
    for name in per_layer[0]:
        values = [fields[name] for fields in per_layer]
        if values[0] is None or name == "queries":
            expected[name] = values[0]
        elif isinstance(values[0], dict):
            expected[name] = {
                part: values[0][part] if part.endswith("bounds")
                else np.stack([value[part] for value in values])
                for part in values[0]
            }  # fmt: skip
        else:
            expected[name] = np.stack(values)
    assert_fields(result, expected)
