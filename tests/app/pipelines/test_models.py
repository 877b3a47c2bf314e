"""One library for the encoder and decoder folders of ATTENTION_MODELS_DIR: each listed with its
family, architecture, sizes and status; loaded on first use, once; one budget, least recently
used unloaded first whatever the family; a broken or too large folder unavailable with why."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch

from app.pipelines.encoder.registry import Pretrained
from app.pipelines.models import Decoder, ModelLibrary
from attention import InputError
from tests.support.tiny_bert import edit_config, write_tiny_encoder

ENCODERS = ("bert", "roberta", "distilbert")
BUDGET = 10**9


def library_of(root: Path, budget: int = BUDGET) -> ModelLibrary:
    return ModelLibrary(root, torch.device("cpu"), budget_bytes=budget, max_bytes=BUDGET)


def listed(library: ModelLibrary) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in library.describe()}


@pytest.fixture
def encoders(tmp_path: Path) -> Path:
    for model_type in ENCODERS:
        write_tiny_encoder(tmp_path / f"Tiny-{model_type}", model_type, pooling="cls")
    return tmp_path


def test_encoder_folders_are_listed_with_their_architecture_and_sizes(encoders: Path) -> None:
    library = library_of(encoders)
    entries = listed(library)
    assert sorted(entries) == [f"tiny-{model_type}" for model_type in sorted(ENCODERS)]
    for model_type in ENCODERS:
        entry = entries[f"tiny-{model_type}"]
        assert library.kind(f"tiny-{model_type}") == "pretrained"
        assert entry["kind"] == "pretrained"
        assert entry["architecture"] == model_type
        assert entry["status"] == "available"
        assert entry["source"] == f"folder:Tiny-{model_type}"
        sizes = (entry["layers"], entry["heads"], entry["d_model"], entry["head_dim"])
        assert sizes == (2, 2, 8, 4)
        assert entry["max_tokens"] == 32
        assert entry["parameter_bytes"] == 4 * entry["parameters"]
        assert "pooling" not in entry  # read when loaded


def test_an_encoder_loads_once_on_first_use_and_lists_its_pooling(encoders: Path) -> None:
    library = library_of(encoders)
    with ThreadPoolExecutor(4) as pool:
        loaded = list(pool.map(lambda _: library.encoder("tiny-roberta"), range(8)))
    assert len({id(model) for model in loaded}) == 1
    assert isinstance(loaded[0], Pretrained)
    assert loaded[0].info.pooling.mode == "cls"
    entry = listed(library)["tiny-roberta"]
    assert entry["status"] == "ready"
    assert entry["pooling"] == {"mode": "cls", "normalize": False}
    assert entry["parameters"] == loaded[0].info.num_parameters


def test_encoders_and_decoders_share_one_budget(encoders: Path) -> None:
    from tests.support.tiny_decoder import write_tiny_decoder

    pytest.importorskip("transformers")
    write_tiny_decoder(encoders / "tiny-gpt2", "gpt2-tied")
    sizes = {name: entry["parameter_bytes"] for name, entry in listed(library_of(encoders)).items()}
    budget = sizes["tiny-gpt2"] + sizes["tiny-bert"]  # not room for a third
    library = library_of(encoders, budget)
    assert isinstance(library.get("tiny-gpt2"), Decoder)
    assert isinstance(library.get("tiny-bert"), Pretrained)
    library.get("tiny-distilbert")
    states = {name: entry["status"] for name, entry in listed(library).items()}
    assert states["tiny-gpt2"] == "available"  # the least recently used, of the other family
    assert states["tiny-bert"] == states["tiny-distilbert"] == "ready"
    assert library.loaded_bytes <= budget


def test_an_encoder_larger_than_the_budget_is_refused_with_both_sizes(encoders: Path) -> None:
    edit_config(encoders / "Tiny-bert", intermediate_size=100_000)
    entry = listed(library_of(encoders, budget=1_000_000))["tiny-bert"]
    assert entry["status"] == "unavailable"
    assert entry["kind"] == "pretrained"
    assert entry["reason"] == (
        "folder:Tiny-bert: its 3,401,040 parameters take 13.0 MiB in float32, more than the "
        "976.6 KiB of ATTENTION_MODELS_MEMORY_BYTES"
    )


def test_broken_encoder_folders_are_unavailable_with_the_reason(encoders: Path) -> None:
    edit_config(encoders / "Tiny-bert", hidden_act="relu")  # found from config.json
    (encoders / "Tiny-roberta" / "tokenizer.json").unlink()  # found when loading
    write_tiny_encoder(encoders / "falcon", "bert")
    edit_config(encoders / "falcon", model_type="falcon")
    library = library_of(encoders)
    with pytest.raises(InputError) as caught:
        library.encoder("tiny-roberta")
    assert caught.value.field == "model"
    reasons = {name: entry.get("reason") for name, entry in listed(library).items()}
    assert reasons == {
        "tiny-bert": "folder:Tiny-bert: config.json: hidden_act 'relu' is not supported "
        "(supported: gelu)",
        "tiny-roberta": "folder:Tiny-roberta: tokenizer.json is missing: the model's tokenizer "
        "file",
        "falcon": "folder:falcon: config.json: model_type 'falcon' is not supported (encoders: "
        "bert, distilbert, roberta; decoders: gpt2, llama, mistral, qwen2)",
        "tiny-distilbert": None,
    }
    assert listed(library)["falcon"]["kind"] == "unknown"
    assert listed(library)["tiny-roberta"]["kind"] == "pretrained"
    assert library.names == ["tiny-distilbert"]
