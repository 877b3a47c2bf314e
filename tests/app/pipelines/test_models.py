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
from app.pipelines.families import Decoder
from app.pipelines.models import ModelLibrary
from attention import InputError
from tests.support.broken_folders import CASES
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
    (encoders / "Tiny-roberta" / "tokenizer.json").unlink()  # found at start-up too
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


FOUND_WITHOUT_THE_WEIGHTS = (
    "missing tokenizer.json",
    "tokenizer.json broken",
    "vocab_size below the tokenizer's",
    "wrong tensor shape",
    "integer weights",
    "a missing tensor",
    "truncated safetensors",
    "a safetensors header that lies",
    "sentence_bert_config.json broken",
)


@pytest.mark.parametrize("case", FOUND_WITHOUT_THE_WEIGHTS)
def test_an_encoder_fault_short_of_the_weights_values_is_found_at_start_up(
    case: str, tmp_path: Path
) -> None:
    """Every worker scans alike: a fault found at start-up is listed by all of them from the
    first request, where one found at load would be listed only by the worker that loaded."""
    breaks, _, words = CASES[case]
    breaks(write_tiny_encoder(tmp_path / "broken", "bert"))
    entry = listed(library_of(tmp_path))["broken"]
    assert entry["status"] == "unavailable", entry
    assert words in entry["reason"]


def test_a_decoder_fault_short_of_the_weights_values_is_found_at_start_up(
    tmp_path: Path,
) -> None:
    from tests.support.tiny_decoder import write_tiny_decoder

    pytest.importorskip("transformers")
    write_tiny_decoder(tmp_path / "tok-too-big", "gpt2-tied")
    edit_config(tmp_path / "tok-too-big", vocab_size=10)  # below the tokenizer's ids
    write_tiny_decoder(tmp_path / "wrong-shape", "gpt2-tied")
    edit_config(tmp_path / "wrong-shape", n_inner=40)
    write_tiny_decoder(tmp_path / "no-tokenizer", "gpt2-tied")
    (tmp_path / "no-tokenizer" / "tokenizer.json").unlink()
    reasons = {name: entry["reason"] for name, entry in listed(library_of(tmp_path)).items()}
    assert "tokenizer.json has ids up to" in reasons["tok-too-big"]
    assert "vocab_size=10" in reasons["tok-too-big"]
    assert "config.json implies" in reasons["wrong-shape"]
    assert "tokenizer.json is missing" in reasons["no-tokenizer"]


def test_corrupt_tensor_values_are_found_only_when_loading(encoders: Path) -> None:
    """NaN weights are read with the tensors: the one fault left to each worker's load."""
    from tests.support.tiny_bert import CONFIG, tiny_weights, write_weights

    weights = tiny_weights(CONFIG)
    weights["embeddings.word_embeddings.weight"][0, 0] = float("nan")
    write_weights(encoders / "Tiny-bert" / "model.safetensors", weights)
    library = library_of(encoders)
    assert listed(library)["tiny-bert"]["status"] == "available"
    with pytest.raises(InputError, match="NaN or infinite"):
        library.encoder("tiny-bert")
    assert listed(library)["tiny-bert"]["status"] == "unavailable"


def test_folders_are_listed_by_name_whatever_their_case(tmp_path: Path) -> None:
    for name in ("MyBert", "bert", "Zeta", "alpha"):
        write_tiny_encoder(tmp_path / name, "bert")
    assert [entry["name"] for entry in library_of(tmp_path).describe()] == [
        "alpha",
        "bert",
        "mybert",
        "zeta",
    ]
