"""The operational endpoints and the OpenAPI document, over real HTTP."""

from __future__ import annotations

import httpx
import pytest
import torch

import app

pytestmark = pytest.mark.integration

DOCUMENTED_ERRORS = {"400", "413", "415", "422", "429", "503", "504"}


def test_healthz_answers_ok(client: httpx.Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_answers_ready_once_started(client: httpx.Client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_info_reports_versions_device_and_limits(client: httpx.Client) -> None:
    info = client.get("/info").json()

    assert info["version"] == app.__version__
    assert info["torch_version"] == torch.__version__
    assert info["device"] == "cpu" or info["device"].startswith("cuda")
    assert info["cuda_available"] is torch.cuda.is_available()
    assert info["limits"]["max_tokens"] >= 1
    assert set(info["limits"]) >= {
        "max_body_bytes", "max_tokens", "max_batch", "max_d_model", "max_heads",
        "max_request_bytes", "max_response_bytes", "memory_budget_bytes",
    }  # fmt: skip


def test_openapi_documents_the_attention_request_body(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/attention"]["post"]

    body = operation["requestBody"]
    assert body["required"] is True
    reference = body["content"]["application/json"]["schema"]["$ref"]
    assert reference == "#/components/schemas/AttentionRequest"
    request_schema = schema["components"]["schemas"]["AttentionRequest"]
    assert {"sequences", "text", "embeddings", "key_sequences", "key_embeddings",
            "value_embeddings", "key_padding_mask", "attn_mask", "parameters", "config",
            "output"} <= set(request_schema["properties"])  # fmt: skip
    assert request_schema["additionalProperties"] is False
    for nested in ("HeadConfig", "OutputOptions"):
        assert nested in schema["components"]["schemas"]


def test_openapi_documents_the_error_statuses_of_attention(client: httpx.Client) -> None:
    responses = client.get("/openapi.json").json()["paths"]["/attention"]["post"]["responses"]

    assert set(responses) >= DOCUMENTED_ERRORS
    assert "application/msgpack" in responses["200"]["content"]
    validation = responses["422"]["content"]["application/json"]["schema"]["$ref"]
    assert validation.endswith("/ValidationErrorBody")


def test_every_schema_reference_resolves(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    references: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            references.extend(value for key, value in node.items() if key == "$ref")
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(schema)
    assert references
    for reference in references:
        assert reference.removeprefix("#/components/schemas/") in components, reference
