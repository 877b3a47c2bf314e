"""Loading decoder folders: sharded checkpoints, and every broken folder refused with a reason
that names the file and the cause, before anything is allocated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from attention.decoder import load_decoder
from attention.errors import AttentionError
from tests.support.tiny_decoder import write_tiny_decoder

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_decoder(tmp_path_factory.mktemp("sound") / "llama", "llama-mqa-tied")


@pytest.fixture
def folder(sound: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(sound, tmp_path / "copy"))


def edit_config(folder: Path, **changes: Any) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


@torch.inference_mode()
def test_a_sharded_checkpoint_loads_as_the_single_file(tmp_path: Path) -> None:
    single = write_tiny_decoder(tmp_path / "single", "qwen2-tied")
    sharded = write_tiny_decoder(tmp_path / "sharded", "qwen2-tied", max_shard_size="4KB")
    assert (sharded / "model.safetensors.index.json").exists()
    ids = torch.tensor([[3, 4, 5, 6]])
    expected = load_decoder(single)[0](ids).logits
    torch.testing.assert_close(load_decoder(sharded)[0](ids).logits, expected)


def reason(folder: Path, **options: Any) -> str:
    with pytest.raises(AttentionError) as caught:
        load_decoder(folder, **options)
    assert str(folder) not in caught.value.message
    return caught.value.message


def test_other_model_types_are_refused_with_the_supported_list(folder: Path) -> None:
    edit_config(folder, model_type="falcon")
    assert reason(folder) == (
        "config.json: model_type 'falcon' is not supported (supported: gpt2, llama, mistral, qwen2)"
    )


def test_rope_scaling_is_refused(folder: Path) -> None:
    edit_config(folder, rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4})
    assert "rope scaling 'linear' is not supported" in reason(folder)


def test_an_oversize_config_is_refused_before_allocating(folder: Path) -> None:
    edit_config(folder, vocab_size=10**12)
    message = reason(folder)
    assert "over the limit" in message
    assert "largest part: token_embeddings" in message


def test_missing_files_are_named(folder: Path) -> None:
    (folder / "tokenizer.json").unlink()
    assert reason(folder) == "tokenizer.json is missing: the model's tokenizer file"


def test_pickle_weights_are_named_as_a_format_not_read(folder: Path) -> None:
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    assert "model.safetensors is missing; the folder has pytorch_model.bin" in reason(folder)


def test_a_tensor_of_the_wrong_shape_is_named(folder: Path) -> None:
    edit_config(folder, intermediate_size=32)
    message = reason(folder)
    assert message == (
        "model.safetensors: model.layers.0.mlp.gate_proj.weight has shape (24, 16); "
        "config.json implies (32, 16)"
    )


def test_a_missing_shard_is_named(tmp_path: Path) -> None:
    sharded = write_tiny_decoder(tmp_path / "sharded", "gpt2-tied", max_shard_size="4KB")
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    shard = sorted(set(index["weight_map"].values()))[-1]
    (sharded / shard).unlink()
    assert reason(sharded) == f"{shard} is missing: model.safetensors.index.json lists it"


def test_a_bert_folder_is_not_a_decoder(folder: Path) -> None:
    edit_config(folder, model_type="bert")
    assert "model_type 'bert' is not supported" in reason(folder)
