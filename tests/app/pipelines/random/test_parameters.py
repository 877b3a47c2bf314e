"""output.parameters: the random model's layer weights in the answer, the module's own (they
recompute its traced q, k, v and output), counted in the estimate, refused for other models."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from app.http.encoding import JSON
from app.http.schemas import AttentionRequest
from app.pipelines import Context
from app.pipelines.cost import JSON_NUMBER_BYTES
from app.pipelines.random import prepare
from app.pipelines.random.batching import run_together
from app.pipelines.random.cost import Shape, random_estimate
from app.pipelines.random.inputs import library_config
from app.service import Service
from app.serving.runtime import Timing
from app.serving.settings import Settings
from attention.cost import layer_parameter_count
from attention_client.frames import assemble, typed_frame

Array = np.ndarray[Any, Any]
TEXT = "the man who passes the sentence should swing the sword"


@pytest.fixture
def service() -> Iterator[Service]:
    service = Service.from_settings(Settings())
    yield service
    service.admission.shutdown()


def body(config: dict[str, Any], **output: Any) -> dict[str, Any]:
    return {"text": TEXT, "config": config, "output": {"parameters": True, **output}}


async def answer(service: Service, request: dict[str, Any]) -> dict[str, Any]:
    context = Context(service, time.perf_counter(), Timing(), JSON)
    prepared = await prepare(AttentionRequest.model_validate(request), context)
    decoded: dict[str, Any] = orjson.loads(bytes(prepared.work()))
    return decoded


def heads(rows: Array, head_dim: int) -> Array:
    """(L, H·d) -> (H, L, d), as the library splits the projections."""
    length = rows.shape[0]
    return rows.reshape(length, -1, head_dim).transpose(1, 0, 2)


def close(recomputed: Array, traced: Array) -> None:
    """Equal to float32 rounding: the JSON numbers are the float32 ones, recomputed in float64."""
    np.testing.assert_allclose(recomputed, traced, rtol=0, atol=1e-5)


def projections(parameters: dict[str, Any], query_dim: int, kv_dim: int) -> list[Array]:
    """W_Q, W_K, W_V (out × in) from either layout of the state dict."""
    if "in_proj_weight" in parameters:
        packed = np.array(parameters["in_proj_weight"])
        return np.split(packed, [query_dim, query_dim + kv_dim])
    return [np.array(parameters[f"{name}_proj_weight"]) for name in "qkv"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "config",
    [
        {"d_model": 16, "num_heads": 4, "seed": 3},
        {"d_model": 16, "num_heads": 4, "num_kv_heads": 2, "seed": 1},  # grouped K/V heads
        {"d_model": 16, "num_heads": 2, "kdim": 8, "vdim": 8, "bias": False},  # separate q, k, v
    ],
)
async def test_the_returned_weights_recompute_the_traced_steps(
    service: Service, config: dict[str, Any]
) -> None:
    kdim = config.get("kdim")
    request = body(config, steps=["inputs", "q", "k", "v", "concat", "output"])
    if kdim:  # kdim ≠ d_model: keys and values of their own (cross-attention)
        request["key_embeddings"] = [np.linspace(-1, 1, 5 * kdim).reshape(5, kdim).tolist()]
    got = await answer(service, request)
    parameters, resolved, result = got["parameters"], got["config"], got["results"][0]
    steps = {name: np.array(value) for name, value in result["steps"].items()}
    head_dim = resolved["head_dim"]
    query_dim = resolved["num_heads"] * head_dim
    kv_dim = resolved["num_kv_heads"] * head_dim
    w_q, w_k, w_v = projections(parameters, query_dim, kv_dim)
    biases = np.split(np.array(parameters.get("in_proj_bias", np.zeros(query_dim + 2 * kv_dim))),
                      [query_dim, query_dim + kv_dim])  # fmt: skip
    x = steps["inputs"]
    keys = np.array(request["key_embeddings"][0]) if kdim else x
    close(heads(x @ w_q.T + biases[0], head_dim), steps["q"])
    close(heads(keys @ w_k.T + biases[1], head_dim), steps["k"])
    close(heads(keys @ w_v.T + biases[2], head_dim), steps["v"])
    w_o = np.array(parameters["out_proj.weight"])
    b_o = np.array(parameters.get("out_proj.bias", np.zeros(w_o.shape[0])))
    close(steps["concat"] @ w_o.T + b_o, steps["output"])


@pytest.mark.anyio
async def test_weights_sent_in_come_back_as_they_were_sent(service: Service) -> None:
    config = {"d_model": 8, "num_heads": 2, "seed": 5}
    drawn = (await answer(service, body(config)))["parameters"]
    own = {name: (np.array(value) * 0.5).tolist() for name, value in drawn.items()}
    returned = (await answer(service, {**body(config), "parameters": own}))["parameters"]
    assert returned.keys() == own.keys()
    for name, value in own.items():
        np.testing.assert_allclose(returned[name], value, rtol=0, atol=1e-7)


@pytest.mark.anyio
async def test_the_estimate_counts_every_returned_weight(service: Service) -> None:
    config = {"d_model": 16, "num_heads": 4, "num_kv_heads": 2, "add_bias_kv": True}
    returned = (await answer(service, body(config, attention="none")))["parameters"]
    numbers = sum(np.array(value).size for value in returned.values())
    library = library_config(AttentionRequest.model_validate(body(config)))
    assert numbers == layer_parameter_count(library)

    def answer_bytes(**output: Any) -> int:
        request = AttentionRequest.model_validate(
            {"text": TEXT, "config": config, "output": {"attention": "none", **output}}
        )
        shape = Shape(batch=1, query_length=10, key_length=11)
        estimate = random_estimate(request, shape, library, JSON, module_cached=True)
        return estimate.response_bytes

    with_weights, without = answer_bytes(parameters=True), answer_bytes()
    assert with_weights - without == numbers * JSON_NUMBER_BYTES["float32"]


def test_other_models_are_told_that_the_weights_are_the_random_models() -> None:
    with pytest.raises(ValidationError, match=r"output.parameters returns the 'random' model"):
        AttentionRequest.model_validate(
            {"text": "a", "model": "all-minilm-l6-v2", "output": {"parameters": True}}
        )


@pytest.mark.anyio
async def test_a_stream_ends_with_the_same_weights_as_the_whole_answer(service: Service) -> None:
    context = Context(service, time.perf_counter(), Timing(), JSON)
    request = AttentionRequest.model_validate(body({"d_model": 8, "num_heads": 2, "seed": 2}))
    prepared = await prepare(request, context)
    assert prepared.frames is not None
    frames: list[dict[str, Any]] = []
    prepared.frames(frames.append)
    assert [frame["frame"] for frame in frames] == ["head", "layer", "end"]
    streamed = assemble([typed_frame(frame) for frame in frames])["parameters"]
    whole = orjson.loads(bytes(prepared.work()))["parameters"]
    assert streamed.keys() == whole.keys()
    for name, value in streamed.items():  # JSON's shortest float32 form: equal once read as float32
        np.testing.assert_array_equal(value, np.asarray(whole[name], dtype=value.dtype))


@pytest.mark.anyio
async def test_a_joined_pass_answers_with_the_same_weights(service: Service) -> None:
    context = Context(service, time.perf_counter(), Timing(), JSON)
    config = {"d_model": 8, "num_heads": 2, "seed": 6}
    requests = [
        body(config),
        {**body(config), "text": "a sword should swing the man who passes the sentence"},
    ]
    prepared = [await prepare(AttentionRequest.model_validate(r), context) for r in requests]
    joins = [p.join for p in prepared]
    assert all(join is not None for join in joins)
    outcomes = run_together([join for join in joins if join is not None], lambda _: True)
    for outcome, alone in zip(outcomes, prepared, strict=True):
        assert isinstance(outcome, bytes | memoryview)
        joined = orjson.loads(bytes(outcome))["parameters"]
        assert joined == orjson.loads(bytes(alone.work()))["parameters"]
