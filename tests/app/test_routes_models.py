"""GET /models and GET /info say what each field is about: the pretrained model's `unavailable`
apart from ATTENTION_MODELS_DIR's, and every working limit a request can meet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.app.test_routes_attention import serving

pytestmark = pytest.mark.anyio


async def test_info_lists_the_generation_and_model_folder_limits() -> None:
    settings = {"max_new_tokens": 7, "max_context_tokens": 99, "models_memory_bytes": 12345}
    async with serving(**settings) as (_, client):
        limits = (await client.get("/info")).json()["limits"]

    assert {name: limits[name] for name in settings} == settings


async def test_an_unreadable_models_dir_is_told_apart_from_the_pretrained_model(
    tmp_path: Path,
) -> None:
    async with serving(models_dir=str(tmp_path / "nowhere")) as (_, client):
        listing = (await client.get("/models")).json()
        info = (await client.get("/info")).json()
        schema = (await client.get("/openapi.json")).json()

    why = "ATTENTION_MODELS_DIR: the model folder does not exist"
    assert listing["models_dir_unavailable"] == info["models_dir_unavailable"] == why
    assert listing["unavailable"] == info["pretrained_unavailable"]
    fields = schema["components"]["schemas"]["ModelList"]["properties"]
    assert "ATTENTION_MODEL_PATH" in fields["unavailable"]["description"]
    assert "ATTENTION_MODELS_DIR" in fields["models_dir_unavailable"]["description"]


def descriptions(schema: object) -> list[str]:
    """Every description string of an OpenAPI document, however deep."""
    if isinstance(schema, dict):
        own = [schema["description"]] if isinstance(schema.get("description"), str) else []
        return own + [text for value in schema.values() for text in descriptions(value)]
    if isinstance(schema, list):
        return [text for value in schema for text in descriptions(value)]
    return []


async def test_schema_bounds_name_the_working_limit_info_reports() -> None:
    """The schema's bounds are absolute caps: a field with a tighter working limit names its
    setting and the /info key that reports it, and every such key is there."""
    async with serving() as (_, client):
        schema = (await client.get("/openapi.json")).json()
        limits = (await client.get("/info")).json()["limits"]

    fields = schema["components"]["schemas"]
    for model, field, setting in [
        ("HeadConfig", "d_model", "max_d_model"),
        ("HeadConfig", "num_heads", "max_heads"),
        ("HeadConfig", "kdim", "max_d_model"),
        ("GenerateOptions", "max_new_tokens", "max_new_tokens"),
        ("GenerateOptions", "max_new_tokens", "max_context_tokens"),
        ("AttentionRequest", "text", "max_text_chars"),
        ("AttentionRequest", "sequences", "max_tokens"),
    ]:
        described = fields[model]["properties"][field]["description"]
        assert f"ATTENTION_{setting.upper()}" in described, (field, setting)
        assert setting in limits
    named = {key for text in descriptions(schema) for key in re.findall(r"limits\.(\w+)", text)}
    assert named
    assert named <= set(limits)


async def test_each_model_lists_the_dtypes_it_computes_in_as_the_schema_names_them() -> None:
    async with serving() as (_, client):
        models = (await client.get("/models")).json()["models"]
        schema = (await client.get("/openapi.json")).json()

    accepted = schema["components"]["schemas"]["HeadConfig"]["properties"]["dtype"]["enum"]
    assert accepted == ["float32", "float64", "bfloat16"]
    for model in models:  # the random model, and the pretrained one where it is installed
        assert model["dtypes"] == accepted, model["name"]
