"""Encoder folders of ATTENTION_MODELS_DIR through POST /attention in-process: everything the
pretrained model has (layers, steps, metrics, analysis, the embedding with the folder's pooling,
shaping), the same answer as the folder served as ATTENTION_MODEL_PATH, and a broken folder
refused with its reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from app.http.encoding import NDJSON
from tests.app.test_routes_attention import serving
from tests.support.tiny_bert import write_tiny_encoder

pytestmark = pytest.mark.anyio
TEXT = ["the man who swing the sword .", "the swords"]
FULL_OUTPUT = {"steps": ["q", "attention"], "metrics": True, "analysis": True, "embedding": True}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_tiny_encoder(root / "Tiny-bert", "bert")
    write_tiny_encoder(root / "Tiny-roberta", "roberta", pooling="cls")
    write_tiny_encoder(root / "Tiny-distilbert", "distilbert", pooling="max")
    broken = write_tiny_encoder(root / "broken-bert", "bert")
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    return root


@pytest.fixture(scope="module")
async def client(root: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(models_dir=str(root)) as (_, client):
        yield client


async def answer(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/attention", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_folder_answers_as_it_does_served_as_the_model_path(
    client: httpx.AsyncClient, root: Path
) -> None:
    body = {"model": "tiny-roberta", "text": TEXT, "layers": [1, 0], "output": FULL_OUTPUT}
    from_library = await answer(client, body)
    async with serving(model_path=str(root / "Tiny-roberta")) as (_, alone):
        as_model_path = await answer(alone, body)
    assert from_library["config"] == as_model_path["config"]
    assert from_library["results"] == as_model_path["results"]


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-roberta", "tiny-distilbert"])
async def test_every_encoder_family_serves_layers_analysis_and_embedding(
    client: httpx.AsyncClient, name: str
) -> None:
    result = await answer(client, {"model": name, "text": TEXT, "output": FULL_OUTPUT})
    first = result["results"][0]
    length = len(first["tokens"])
    assert np.array(first["attention"]).shape == (2, 2, length, length)
    assert np.array(first["steps"]["q"]).shape[0] == 2
    assert np.array(first["analysis"]["rollout"]).shape == (length, length)
    assert np.array(first["metrics"]["entropy"]).shape == (2, 2)
    assert len(first["embedding"]) == 8


async def test_the_embedding_follows_the_folders_pooling(client: httpx.AsyncClient) -> None:
    body: dict[str, Any] = {"text": TEXT, "output": {"attention": "none", "embedding": True}}
    cls = (await answer(client, {**body, "model": "tiny-roberta"}))["results"][0]
    np.testing.assert_allclose(cls["embedding"], cls["output"][0], atol=1e-6)  # CLS, no Normalize
    largest = (await answer(client, {**body, "model": "tiny-distilbert"}))["results"][0]
    np.testing.assert_allclose(largest["embedding"], np.max(largest["output"], axis=0), atol=1e-6)
    mean = (await answer(client, {**body, "model": "tiny-bert"}))["results"][0]
    expected = np.mean(mean["output"], axis=0)  # no modules.json: mean, normalised
    np.testing.assert_allclose(mean["embedding"], expected / np.linalg.norm(expected), atol=1e-6)
    models = (await client.get("/models")).json()["models"]
    pooling = {entry["name"]: entry.get("pooling") for entry in models}
    assert pooling["tiny-distilbert"] == {"mode": "max", "normalize": False}


async def test_shaping_options_work_on_a_folder_encoder(client: httpx.AsyncClient) -> None:
    body: dict[str, Any] = {"model": "tiny-bert", "text": TEXT, "layers": [1]}
    dense = (await answer(client, body))["results"][0]
    shaped = await answer(client, {**body, "output": {"heads": [1], "top_k": 2}})
    weights = np.array(dense["attention"])[:, [1]]
    top = np.sort(weights, axis=-1)[..., ::-1][..., :2]
    got = np.array(shaped["results"][0]["top_k"]["weights"])
    np.testing.assert_allclose(got, top, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
async def test_another_precision_is_refused_naming_the_field(
    client: httpx.AsyncClient, dtype: str
) -> None:
    body = {"model": "tiny-bert", "text": TEXT, "config": {"dtype": dtype}}
    response = await client.post("/attention", json=body)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"][1:] == ["config", "dtype"]
    assert "run in float32" in error["msg"]


async def test_a_broken_folder_is_422_with_its_reason_and_listed_unavailable(
    client: httpx.AsyncClient, root: Path
) -> None:
    response = await client.post("/attention", json={"model": "broken-bert", "text": TEXT})
    assert response.status_code == 422
    assert "model.safetensors" in response.text
    assert str(root) not in response.text
    listed = {entry["name"]: entry for entry in (await client.get("/models")).json()["models"]}
    assert listed["broken-bert"]["status"] == "unavailable"
    assert listed["broken-bert"]["reason"].startswith("folder:broken-bert: model.safetensors")
    response = await client.post("/attention", json={"model": "nope", "text": TEXT})
    assert response.status_code == 422
    assert "tiny-distilbert" in response.text.split("available:")[-1]
    assert "broken-bert" not in response.text.split("available:")[-1]


async def test_a_folder_encoder_streams_its_layers(client: httpx.AsyncClient) -> None:
    body = {"model": "tiny-distilbert", "text": TEXT, "output": {"metrics": True}}
    whole = await answer(client, body)
    response = await client.post("/attention", json=body, headers={"accept": NDJSON})
    assert response.status_code == 200, response.text
    frames = [orjson.loads(line) for line in response.content.splitlines()]
    assert [frame["frame"] for frame in frames] == ["head", "layer", "layer", "end"]
    for frame in frames[1:-1]:
        for row, result in enumerate(frame["results"]):
            assert result["attention"] == whole["results"][row]["attention"][frame["layer"]]


async def test_a_model_name_is_matched_whatever_its_case(client: httpx.AsyncClient) -> None:
    """Folder Tiny-roberta is served as tiny-roberta: "Tiny-RoBERTa" asks for it, and the answer
    names the model as /models lists it."""
    body: dict[str, Any] = {"text": TEXT, "output": {"attention": "none"}}
    asked = await answer(client, {**body, "model": "Tiny-RoBERTa"})
    served = await answer(client, {**body, "model": "tiny-roberta"})
    assert asked["config"]["model"] == "tiny-roberta"
    assert asked["results"] == served["results"]
    names = [entry["name"] for entry in (await client.get("/models")).json()["models"]]
    folders = [name for name in names if name.startswith(("tiny-", "broken-"))]
    assert folders == sorted(folders)
    response = await client.post("/attention", json={**body, "model": "RANDOM", "text": TEXT})
    assert response.status_code == 200, response.text


async def test_a_folder_lists_float32_as_its_only_dtype(client: httpx.AsyncClient) -> None:
    listed = {entry["name"]: entry for entry in (await client.get("/models")).json()["models"]}
    assert listed["tiny-bert"]["dtypes"] == ["float32"]
