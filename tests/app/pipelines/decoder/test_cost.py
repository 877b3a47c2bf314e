"""A decoder request's estimate covers its answer, whatever is asked, generation included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from app.http.encoding import JSON, MSGPACK, encode
from app.http.schemas import AttentionRequest
from app.pipelines.decoder.cost import decoder_estimate
from app.pipelines.decoder.run import run_decoder
from app.pipelines.encoder.checks import tokenize_request
from app.pipelines.models import ModelLibrary
from tests.support.tiny_decoder import write_tiny_decoder

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> ModelLibrary:
    root = tmp_path_factory.mktemp("models")
    write_tiny_decoder(root / "tiny", "llama-gqa-wide-heads-biases")
    return ModelLibrary(root, torch.device("cpu"), budget_bytes=10**9, max_bytes=10**9)


@pytest.mark.parametrize("media_type", [JSON, MSGPACK])
@pytest.mark.parametrize(
    "fields",
    [
        {"text": ["the king", "once upon a time there was an old king"]},
        {"text": "the king", "output": {"attention": "average", "steps": "all", "metrics": True}},
        {"text": "the king", "output": {"attention": "none"}},
        {"text": "the king and his", "generate": {"max_new_tokens": 20}},
        {"text": "a", "generate": {"max_new_tokens": 40, "temperature": 2.0}, "layers": [1]},
        {
            "text": ["the king", "a"],
            "output": {"heads": [3, 0], "queries": {"start": 1, "stop": 9}},
        },
        {
            "text": "the king and his",
            "output": {"top_k": 30, "pool": 64, "dtype": "float16"},
            "generate": {"max_new_tokens": 20},
        },
        {
            "text": "the king",
            "output": {"attention": "average", "top_k": 2, "heads": [1]},
            "generate": {"max_new_tokens": 12},
        },
        {
            "text": "the king",
            "output": {"pool": 3, "queries": [0]},
            "generate": {"max_new_tokens": 12},
        },
    ],
)
def test_the_estimate_covers_the_answer(
    library: ModelLibrary, fields: dict[str, Any], media_type: str
) -> None:
    request = AttentionRequest.model_validate({"model": "tiny", **fields})
    decoder = library.decoder("tiny")
    layers = [0, 1] if request.layers == "all" else request.layers
    batch = tokenize_request(request, decoder.tokenizer)
    estimate = decoder_estimate(request, batch, decoder.info.config, layers, media_type)
    results = run_decoder(request, decoder, batch, layers)
    answer = encode({"results": results, "config": {}, "meta": {}}, media_type, None)
    assert len(answer) <= estimate.response_bytes
    assert estimate.response_bytes <= estimate.peak_bytes


def test_more_new_tokens_cost_more(library: ModelLibrary) -> None:
    decoder = library.decoder("tiny")

    def estimate(new: int) -> int:
        request = AttentionRequest.model_validate(
            {"model": "tiny", "text": "the king", "generate": {"max_new_tokens": new}}
        )
        batch = tokenize_request(request, decoder.tokenizer)
        config = decoder.info.config
        return decoder_estimate(request, batch, config, [0, 1], JSON).peak_bytes

    assert estimate(10) < estimate(100) < estimate(1000)


def test_top_k_and_pool_cost_less_than_the_dense_answer(library: ModelLibrary) -> None:
    decoder = library.decoder("tiny")
    prompt = " ".join(["the king"] * 24)

    def answer_bytes(output: dict[str, Any]) -> int:
        request = AttentionRequest.model_validate(
            {"model": "tiny", "text": prompt, "output": output, "generate": {"max_new_tokens": 8}}
        )
        batch = tokenize_request(request, decoder.tokenizer)
        config = decoder.info.config
        return decoder_estimate(request, batch, config, [0, 1], JSON).response_bytes

    dense = answer_bytes({})
    assert answer_bytes({"top_k": 2}) < dense / 4
    assert answer_bytes({"pool": 4}) < dense / 4
    assert answer_bytes({"heads": [0]}) < dense / 2


def test_the_library_checks_folders_without_loading_and_loads_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tiny_decoder(tmp_path / "A-Model", "gpt2-tied")
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "a-file.txt").write_text("ignored")
    library = ModelLibrary(tmp_path, torch.device("cpu"), budget_bytes=10**9, max_bytes=10**9)
    assert library.names == ["a-model"]
    described = {entry["name"]: entry for entry in library.describe()}
    assert described["a-model"]["status"] == "available"
    assert described["not-a-model"]["reason"] == (
        "folder:not-a-model: config.json is missing: the model's configuration file"
    )
    loads = []
    original = ModelLibrary._load
    monkeypatch.setattr(
        ModelLibrary, "_load", lambda self, entry: loads.append(entry.name) or original(self, entry)
    )
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        models = set(map(id, pool.map(lambda _: library.get("a-model").model, range(8))))
    assert loads == ["a-model"]
    assert len(models) == 1
    assert library.describe()[0]["status"] == "ready"


def test_a_missing_models_folder_is_reported(tmp_path: Path) -> None:
    library = ModelLibrary(
        tmp_path / "nowhere", torch.device("cpu"), budget_bytes=10**9, max_bytes=10**9
    )
    assert library.names == []
    assert library.unavailable == "ATTENTION_MODELS_DIR: the model folder does not exist"
