"""Decoder folders in ATTENTION_MODELS_DIR, through a real server: parity with transformers over
HTTP (attention, hidden state, tokens, greedy generation), a broken folder of each architecture
listed with its reason and never a 500, the memory budget, one load for concurrent requests; an
encoder folder beside them (tests/app/pipelines/encoder/test_library.py has the rest)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from app.http.answers import AttentionResponse
from tests.integration.conftest import client_for
from tests.support.server import RunningServer, launch
from tests.support.tiny_bert import write_tiny_encoder
from tests.support.tiny_decoder import reference_decoder, reference_tokenizer, write_tiny_decoder

pytest.importorskip("transformers")
PROMPT = "once upon a time there was an old king"
SOUND = {"tiny-llama": "llama-gqa-wide-heads-biases", "tiny-gpt2": "gpt2-tied",
         "tiny-mistral": "mistral-window", "tiny-qwen2": "qwen2-tied"}  # fmt: skip
BUDGET = 80_000  # bytes: any two tiny models fit, not three (each is 20-30 kB)


def edit_config(folder: Path, **changes: Any) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | changes))


def build_folders(root: Path) -> dict[str, Path]:
    sound = root / "sound"
    made = {name: write_tiny_decoder(sound / name, variant) for name, variant in SOUND.items()}
    models = root / "models"
    models.mkdir()
    for name, folder in made.items():
        shutil.copytree(folder, models / name)
    broken = {  # one per architecture, each broken in its own way
        "broken-gpt2-no-tokenizer": "tiny-gpt2",
        "broken-llama-rope-scaling": "tiny-llama",
        "broken-qwen2-shape": "tiny-qwen2",
        "broken-mistral-oversize": "tiny-mistral",
        "broken-falcon": "tiny-llama",
        "too-large-for-the-budget": "tiny-qwen2",
    }
    for name, source in broken.items():
        shutil.copytree(made[source], models / name)
    (models / "broken-gpt2-no-tokenizer" / "tokenizer.json").unlink()
    yarn = {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e4}
    edit_config(models / "broken-llama-rope-scaling", rope_parameters=yarn)
    edit_config(models / "broken-qwen2-shape", intermediate_size=40)
    edit_config(models / "broken-mistral-oversize", vocab_size=10**12)
    edit_config(models / "broken-falcon", model_type="falcon")
    edit_config(models / "too-large-for-the-budget", intermediate_size=4000)
    write_tiny_encoder(models / "tiny-distilbert", "distilbert", pooling="cls")  # beside them
    return {"models": models, **made}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_folders(tmp_path_factory.mktemp("decoders"))


@pytest.fixture(scope="module")
def server(folders: dict[str, Path]) -> Iterator[RunningServer]:
    running = launch({
        "ATTENTION_MODELS_DIR": str(folders["models"]),
        "ATTENTION_MODELS_MEMORY_BYTES": str(BUDGET),
        "ATTENTION_LOG_LEVEL": "info",
    })  # fmt: skip
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with client_for(server.base_url) as session_client:
        yield session_client


def models(client: httpx.Client) -> dict[str, dict[str, Any]]:
    response = client.get("/models")
    assert response.status_code == 200
    return {entry["name"]: entry for entry in response.json()["models"]}


def attention(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return client.post("/attention", json=body)


@pytest.mark.parametrize("name", sorted(SOUND))
def test_attention_and_hidden_state_match_transformers(
    client: httpx.Client, folders: dict[str, Path], name: str
) -> None:
    response = attention(
        client, {"model": name, "text": PROMPT, "output": {"attention": "per_head"}}
    )
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    tokenizer = reference_tokenizer(folders[name])
    ids = tokenizer(PROMPT)["input_ids"]
    assert result["tokens"] == tokenizer.convert_ids_to_tokens(ids)
    with torch.inference_mode():
        theirs = reference_decoder(folders[name])(
            torch.tensor([ids]), output_attentions=True, output_hidden_states=True
        )
    expected = torch.stack([layer[0] for layer in theirs.attentions]).numpy()
    np.testing.assert_allclose(np.array(result["attention"]), expected, atol=1e-4)
    np.testing.assert_allclose(np.array(result["output"]), theirs.hidden_states[-1][0], atol=1e-4)


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
def test_greedy_generation_matches_transformers(
    client: httpx.Client, folders: dict[str, Path], name: str
) -> None:
    body = {"model": name, "text": PROMPT, "generate": {"max_new_tokens": 10}}
    response = attention(client, body)
    assert response.status_code == 200, response.text
    AttentionResponse.model_validate(response.json())  # the published schema holds
    generation = response.json()["results"][0]["generation"]
    ids = reference_tokenizer(folders[name])(PROMPT, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        theirs = reference_decoder(folders[name]).generate(
            ids, do_sample=False, max_new_tokens=10, output_attentions=True, output_logits=True,
            return_dict_in_generate=True, eos_token_id=2, pad_token_id=0,
        )  # fmt: skip
    assert generation["token_ids"] == theirs.sequences[0, ids.shape[1] :].tolist()
    for index, token in enumerate(generation["token_ids"]):
        expected = torch.log_softmax(theirs.logits[index][0], dim=-1)[token]
        assert generation["logprobs"][index] == pytest.approx(float(expected), abs=1e-4)
        rows = torch.stack([layer[0, :, -1] for layer in theirs.attentions[index]]).numpy()
        np.testing.assert_allclose(np.array(generation["attention"][index]), rows, atol=1e-4)
    assert attention(client, body).json()["results"][0]["generation"] == generation


def test_sampling_is_reproducible_and_bounded(client: httpx.Client) -> None:
    body = {"model": "tiny-qwen2", "text": PROMPT, "output": {"attention": "none"},
            "generate": {"max_new_tokens": 8, "temperature": 1.2, "top_k": 20, "top_p": 0.9,
                         "seed": 7}}  # fmt: skip
    first = attention(client, body).json()["results"][0]["generation"]
    assert attention(client, body).json()["results"][0]["generation"] == first
    assert first["attention"] is None
    too_many = {**body, "generate": {"max_new_tokens": 100_000}}
    assert attention(client, too_many).status_code == 422  # the schema's bound
    over_setting = {**body, "generate": {"max_new_tokens": 1000}}
    response = attention(client, over_setting)
    assert response.status_code == 413
    assert "max_new_tokens" in response.text


def test_generate_with_an_encoder_or_random_model_is_refused(client: httpx.Client) -> None:
    response = attention(client, {"text": PROMPT, "generate": {"max_new_tokens": 2}})
    assert response.status_code == 422
    assert "generate is for decoder models" in response.text


def test_broken_folders_say_why_and_never_500(
    client: httpx.Client, folders: dict[str, Path]
) -> None:
    listed = models(client)  # before a request names them: found at start-up
    reasons = {name: entry.get("reason") for name, entry in listed.items() if "reason" in entry}
    assert reasons == {
        "broken-falcon": "folder:broken-falcon: config.json: model_type 'falcon' is not supported "
        "(encoders: bert, distilbert, roberta; decoders: gpt2, llama, mistral, qwen2)",
        "broken-gpt2-no-tokenizer": "folder:broken-gpt2-no-tokenizer: tokenizer.json is missing: "
        "the model's tokenizer file",
        "broken-llama-rope-scaling": "folder:broken-llama-rope-scaling: config.json: rope scaling "
        "'yarn' is not supported (supported: default, no scaling)",
        "broken-mistral-oversize": listed["broken-mistral-oversize"]["reason"],
        "broken-qwen2-shape": "folder:broken-qwen2-shape: model.safetensors: "
        "model.layers.0.mlp.gate_proj.weight has shape (24, 16); config.json implies (40, 16)",
        "too-large-for-the-budget": listed["too-large-for-the-budget"]["reason"],
    }
    assert "32,000,000,003,920 parameters take 116.4 TiB" in reasons["broken-mistral-oversize"]
    assert "ATTENTION_MODELS_MEMORY_BYTES" in reasons["too-large-for-the-budget"]
    assert all(listed[name]["status"] == "unavailable" for name in reasons)
    assert str(folders["models"]) not in json.dumps(listed)
    for name in ("broken-gpt2-no-tokenizer", "broken-qwen2-shape"):
        response = attention(client, {"model": name, "text": PROMPT})
        assert response.status_code == 422
        assert response.json()["detail"][0]["msg"].endswith(reasons[name])
    response = attention(client, {"model": "broken-falcon", "text": PROMPT})
    assert response.status_code == 422
    assert "model_type 'falcon' is not supported" in response.text


def test_models_are_listed_with_their_architecture(client: httpx.Client) -> None:
    listed = models(client)
    llama = listed["tiny-llama"]
    assert llama["architecture"] == "llama"
    assert (llama["heads"], llama["kv_heads"], llama["head_dim"], llama["d_model"]) == (4, 2, 8, 16)
    assert listed["tiny-mistral"]["sliding_windows"] == [3, 3]
    assert listed["tiny-gpt2"]["tied_embeddings"] is True


def test_an_encoder_folder_beside_the_decoders_is_served(client: httpx.Client) -> None:
    body = {"model": "tiny-distilbert", "text": "the man", "output": {"embedding": True}}
    response = attention(client, body)
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert result["tokens"] == ["[CLS]", "the", "man", "[SEP]"]
    np.testing.assert_allclose(result["embedding"], result["output"][0], atol=1e-6)  # CLS
    entry = models(client)["tiny-distilbert"]
    assert (entry["kind"], entry["architecture"], entry["status"]) == (
        "pretrained", "distilbert", "ready",
    )  # fmt: skip


def test_least_recently_used_is_unloaded_past_the_budget(client: httpx.Client) -> None:
    for name in ("tiny-llama", "tiny-gpt2", "tiny-mistral"):
        assert attention(client, {"model": name, "text": "the king"}).status_code == 200
    listed = models(client)
    assert listed["tiny-mistral"]["status"] == "ready"
    assert listed["tiny-llama"]["status"] == "available"  # unloaded: the least recently used
    loaded = sum(
        entry["parameter_bytes"] for entry in listed.values() if entry.get("status") == "ready"
    )
    assert loaded <= BUDGET


def test_concurrent_first_requests_load_once(client: httpx.Client, server: RunningServer) -> None:
    body = {"model": "tiny-qwen2", "text": "the king", "output": {"attention": "none"}}
    before = server.log().count("model tiny-qwen2 loaded")
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: attention(client, body).status_code, range(4)))
    assert statuses == [200] * 4
    assert server.log().count("model tiny-qwen2 loaded") <= before + 1


def test_an_unknown_model_is_refused_with_the_decoders_listed(client: httpx.Client) -> None:
    response = attention(client, {"model": "nope", "text": PROMPT})
    assert response.status_code == 422
    assert "tiny-llama" in response.text
    assert "broken-falcon" not in response.text.split("available:")[-1]
