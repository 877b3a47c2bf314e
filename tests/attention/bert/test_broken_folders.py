"""Broken model folders: each is refused with the library's error, a message that names the
cause and the file within the folder (never an absolute path), before anything large is
allocated."""

from __future__ import annotations

import builtins
import errno
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from attention.bert import (
    BertConfig,
    BertModel,
    ModelError,
    ModelFileError,
    ModelSizeError,
    load_bert,
    num_parameters,
    parameter_bytes,
)
from attention.bert.config import MAX_LAYERS, check_model_size, format_bytes
from attention.errors import ConfigError, ParameterError
from tests.attention.bert.conftest import requires_model_libraries
from tests.support.broken_folders import CASES
from tests.support.tiny_bert import CONFIG, VOCAB, write_tiny_bert, write_tokenizer

pytestmark = requires_model_libraries


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny_bert(tmp_path / "tiny-bert")


def test_the_tiny_folder_loads_and_runs(tiny: Path) -> None:
    model, tokenizer, info = load_bert(tiny)
    batch = tokenizer.encode(["The man who swings the swords."])
    out = model(batch.input_ids, key_padding_mask=batch.key_padding_mask)
    assert out.last_hidden_state.shape == (1, batch.lengths[0], 8)
    assert info.num_parameters == num_parameters(info.config)
    assert info.unused_weights == ("pooler.dense.bias", "pooler.dense.weight")


@pytest.mark.parametrize(("name"), list(CASES))
def test_a_broken_folder_is_refused_with_its_cause(tiny: Path, name: str) -> None:
    breaks, error_type, expected = CASES[name]
    path = breaks(tiny)
    with pytest.raises(error_type) as caught:
        load_bert(path)
    message = caught.value.message
    assert expected in message
    assert str(tiny.parent) not in message, "an absolute path in the message"


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer.json"])
def test_permission_denied_on_a_file_is_named(
    tiny: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root reads a chmod 000 file anyway: the refusal is simulated where the file is opened."""
    refuse_opening(monkeypatch, tiny / name)
    with pytest.raises(ModelFileError) as caught:
        load_bert(tiny)
    assert caught.value.message == f"{name} cannot be read: permission denied"
    assert caught.value.field == name


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_named(tiny: Path) -> None:
    (tiny / "config.json").chmod(0)
    with pytest.raises(ModelFileError, match=r"config\.json cannot be read: permission denied"):
        load_bert(tiny)


def test_permission_denied_on_the_folder_is_named(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_stat = os.stat

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if Path(path) == tiny:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    with pytest.raises(ModelFileError) as caught:
        load_bert(tiny)
    assert caught.value.message == "the model folder cannot be read: permission denied"


def test_any_other_os_error_is_named_without_the_path(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_opening(monkeypatch, tiny / "config.json", errno.EIO)
    with pytest.raises(ModelFileError) as caught:
        load_bert(tiny)
    assert caught.value.message == "config.json cannot be read: input/output error"


def refuse_opening(monkeypatch: pytest.MonkeyPatch, target: Path, code: int = errno.EACCES) -> None:
    """Opening `target` raises the OSError `code` carries, as the kernel would."""
    real_open = builtins.open

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | Path) and Path(file) == target:
            raise OSError(code, os.strerror(code), str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: guarded_open(self, *a, **k))


def test_sizes_are_checked_before_anything_is_allocated(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No BertModel is built for a folder whose config or weights header is wrong."""
    built: list[BertConfig] = []
    original_init = BertModel.__init__

    def counting_init(self: BertModel, config: BertConfig) -> None:
        if torch.empty(0).device.type != "meta":
            built.append(config)
        original_init(self, config)

    monkeypatch.setattr(BertModel, "__init__", counting_init)
    for name in ("huge max_position_embeddings", "wrong tensor shape", "truncated safetensors"):
        folder = write_tiny_bert(tiny.parent / name.replace(" ", "-"))
        CASES[name][0](folder)
        with pytest.raises((ModelError, ParameterError)):
            load_bert(folder)
    assert built == []


def test_the_limit_is_the_callers(tiny: Path) -> None:
    config = BertConfig.from_dict(CONFIG)
    needed = parameter_bytes(config, torch.float32)
    load_bert(tiny, max_bytes=needed)
    with pytest.raises(ModelSizeError) as caught:
        load_bert(tiny, max_bytes=needed - 1)
    assert (caught.value.needed_bytes, caught.value.max_bytes) == (needed, needed - 1)
    with pytest.raises(ModelSizeError, match="in float64"):
        load_bert(tiny, dtype=torch.float64, max_bytes=needed)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"hidden_size": 12, "num_attention_heads": 3, "intermediate_size": 7},
        {"num_hidden_layers": 5, "type_vocab_size": 1, "max_position_embeddings": 3},
        {"vocab_size": 1000, "num_hidden_layers": 1},
    ],
)
def test_parameters_counted_from_the_config_match_the_model(changes: dict[str, int]) -> None:
    config = BertConfig.from_dict({**CONFIG, **changes})
    model = BertModel(config)
    count = sum(parameter.numel() for parameter in model.parameters())
    assert num_parameters(config) == count
    assert parameter_bytes(config, torch.float64) == 8 * count
    assert parameter_bytes(config, torch.float16) == 2 * count


def test_minilm_sized_config_counts_its_published_parameters() -> None:
    minilm = {
        "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
        "num_attention_heads": 12, "intermediate_size": 1536, "max_position_embeddings": 512,
    }  # fmt: skip
    assert num_parameters(BertConfig.from_dict(minilm)) == 22_565_376


def test_the_size_message_names_the_part_and_the_sizes() -> None:
    config = BertConfig.from_dict({**CONFIG, "max_position_embeddings": 100_000_000_000})
    with pytest.raises(ModelSizeError) as caught:
        check_model_size(config, torch.float32, 4 * 1024**3)
    assert caught.value.message == (
        "config.json describes 800,000,001,328 parameters, 2.9 TiB in float32, over the limit "
        "of 4.0 GiB (largest part: position_embeddings, max_position_embeddings=100000000000 × "
        "hidden_size=8)"
    )
    with pytest.raises(ConfigError, match=str(MAX_LAYERS)):
        check_model_size(
            BertConfig.from_dict({**CONFIG, "num_hidden_layers": 2000}), torch.float32, 2**62
        )


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 bytes"), (1023, "1023 bytes"), (1536, "1.5 KiB"), (4 * 1024**3, "4.0 GiB")],
)
def test_format_bytes(count: int, text: str) -> None:
    assert format_bytes(count) == text


def test_a_tokenizer_with_fewer_tokens_than_vocab_size_is_fine(tiny: Path) -> None:
    write_tokenizer(tiny / "tokenizer.json", VOCAB[:-2])
    _, tokenizer, info = load_bert(tiny)
    assert tokenizer.id_count == len(VOCAB) - 2 < info.config.vocab_size
