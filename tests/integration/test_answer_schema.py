"""Real answers of every pipeline validate against the OpenAPI schema the service publishes.

`AttentionResponse` is the one typed description of an answer; FastAPI does not validate the
bytes /attention writes itself (for speed), so this test does, for answers with every option.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

pytestmark = pytest.mark.integration

ANSWERS: dict[str, dict[str, Any]] = {
    "random, per-head weights": {"text": "The man who passes the sentence"},
    "random, every step and metrics": {
        "sequences": [["a", "b", "c"], ["d"]],
        "config": {"d_model": 8, "num_heads": 2, "add_bias_kv": True, "causal": True},
        "output": {"steps": "all", "metrics": True, "attention": "average"},
    },
    "random, cross-attention with masks": {
        "embeddings": [[[0.1] * 8, [0.2] * 8]],
        "key_embeddings": [[[0.3] * 8, [0.4] * 8, [0.5] * 8]],
        "key_padding_mask": [[False, False, True]],
        "config": {"d_model": 8, "num_heads": 2},
        "output": {"attention": "none", "precision": 3},
    },
    "random, shaped: heads, queries, top_k and pool": {
        "text": "The man who passes the sentence should swing",
        "config": {"d_model": 8, "num_heads": 2},
        "output": {"heads": [1], "queries": {"start": 1, "stop": 5}, "top_k": 3, "pool": 2},
    },
    "pretrained, shaped: average, a list of queries, top_k": {
        "model": "all-minilm-l6-v2",
        "text": "The man who passes",
        "layers": [1],
        "output": {"attention": "average", "queries": [0, 2], "top_k": 2},
    },
    "pretrained, layers, steps, analysis and embedding": {
        "model": "all-minilm-l6-v2",
        "text": ["The man who passes", "the sword"],
        "layers": [0, 5],
        "output": {
            "steps": ["q", "attention"],
            "metrics": True,
            "analysis": True,
            "embedding": True,
        },
    },
}


@pytest.fixture(scope="module")
def answer_validator(client: httpx.Client) -> Draft202012Validator:
    schema = client.get("/openapi.json").json()
    registry: Registry[Any] = Registry().with_resource(
        "urn:openapi", Resource.from_contents(schema, default_specification=DRAFT202012)
    )
    target = {"$ref": "urn:openapi#/components/schemas/AttentionResponse"}
    return Draft202012Validator(target, registry=registry)


@pytest.mark.parametrize("body", ANSWERS.values(), ids=ANSWERS.keys())
def test_a_real_answer_matches_the_published_schema(
    client: httpx.Client, answer_validator: Draft202012Validator, body: dict[str, Any]
) -> None:
    if body.get("model") and body["model"] not in client.get("/info").json()["models"]:
        pytest.skip("the bundled model is not installed")
    response = client.post("/attention", json=body)
    assert response.status_code == 200, response.text

    errors = [error.message for error in answer_validator.iter_errors(response.json())]

    assert errors == []


def test_the_schema_catches_an_answer_missing_a_contract_field(
    answer_validator: Draft202012Validator, client: httpx.Client
) -> None:
    answer = client.post("/attention", json=ANSWERS["random, per-head weights"]).json()
    del answer["results"][0]["attention"]

    assert not answer_validator.is_valid(answer)
