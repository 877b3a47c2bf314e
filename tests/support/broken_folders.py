"""Tiny BERT folders broken in one way each, with the error and the words loading must give.

`CASES[name] = (break, error type, expected words)`: `break` breaks the sound folder it is given
(tests/support/tiny_bert.py) and returns the path to load.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from attention.bert import ModelFileError, ModelSizeError
from attention.errors import AttentionError, ConfigError, ParameterError
from tests.support.tiny_bert import CONFIG, edit_config, tiny_weights, write_weights

Break = Callable[[Path], Path]
"""Breaks the sound tiny folder it is given; returns the path to load."""


def _remove(name: str) -> Break:
    def act(folder: Path) -> Path:
        (folder / name).unlink()
        return folder

    return act


def _replace_with_folder(name: str) -> Break:
    def act(folder: Path) -> Path:
        (folder / name).unlink()
        (folder / name).mkdir()
        return folder

    return act


def _write(name: str, content: bytes) -> Break:
    def act(folder: Path) -> Path:
        (folder / name).write_bytes(content)
        return folder

    return act


def _config(**changes: Any) -> Break:
    def act(folder: Path) -> Path:
        edit_config(folder, **changes)
        return folder

    return act


def _only(unsupported: str, instead_of: str) -> Break:
    def act(folder: Path) -> Path:
        (folder / instead_of).unlink()
        (folder / unsupported).write_bytes(b"\x80\x02}q\x00.")  # a pickle's first bytes
        return folder

    return act


def _truncated_weights(folder: Path) -> Path:
    path = folder / "model.safetensors"
    content = path.read_bytes()
    path.write_bytes(content[: len(content) - 100])
    return folder


def _header_that_lies(folder: Path) -> Path:
    """The word embeddings declared (12, 8) in F32 over 4 bytes of data."""
    path = folder / "model.safetensors"
    content = path.read_bytes()
    length = struct.unpack("<Q", content[:8])[0]
    header = json.loads(content[8 : 8 + length])
    entry = header["embeddings.word_embeddings.weight"]
    entry["data_offsets"] = [entry["data_offsets"][0], entry["data_offsets"][0] + 4]
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + content[8 + length :])
    return folder


def _weights(change: Callable[[dict[str, torch.Tensor]], None]) -> Break:
    def act(folder: Path) -> Path:
        weights = tiny_weights(CONFIG)
        change(weights)
        write_weights(folder / "model.safetensors", weights)
        return folder

    return act


def _wrong_shape(weights: dict[str, torch.Tensor]) -> None:
    weights["encoder.layer.1.intermediate.dense.weight"] = torch.zeros(12, 8)


def _integer_weights(weights: dict[str, torch.Tensor]) -> None:
    weights["encoder.layer.0.attention.self.key.weight"] = torch.zeros(8, 8, dtype=torch.int32)


def _missing_weight(weights: dict[str, torch.Tensor]) -> None:
    del weights["encoder.layer.1.output.LayerNorm.bias"]


def _small_vocabulary(folder: Path) -> Path:
    edit_config(folder, vocab_size=8)
    weights = tiny_weights({**CONFIG, "vocab_size": 8})
    write_weights(folder / "model.safetensors", weights)
    return folder


def _link_loop(folder: Path) -> Path:
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to(folder / "config.json")
    return folder


def _pipe(folder: Path) -> Path:
    (folder / "tokenizer.json").unlink()
    os.mkfifo(folder / "tokenizer.json")
    return folder


def _is_a_file(folder: Path) -> Path:
    return folder / "config.json"


def _inside_a_file(folder: Path) -> Path:
    return folder / "config.json" / "model"


def _nowhere(folder: Path) -> Path:
    return folder / "nowhere"


CASES: dict[str, tuple[Break, type[AttentionError], str]] = {
    "missing config.json": (_remove("config.json"), ModelFileError, "config.json is missing"),
    "missing weights": (_remove("model.safetensors"), ModelFileError, "model.safetensors is"),
    "missing tokenizer.json": (_remove("tokenizer.json"), ModelFileError, "tokenizer.json is"),
    "config.json is a folder": (
        _replace_with_folder("config.json"),
        ModelFileError,
        "config.json is a folder, not a file",
    ),
    "config.json a loop of links": (_link_loop, ModelFileError, "a loop of symbolic links"),
    "tokenizer.json a pipe": (_pipe, ModelFileError, "tokenizer.json is not a regular file"),
    "the path is a file": (_is_a_file, ModelFileError, "is a file, not a folder"),
    "the path is inside a file": (_inside_a_file, ModelFileError, "is inside a file"),
    "the folder does not exist": (_nowhere, ModelFileError, "does not exist"),
    "invalid JSON": (_write("config.json", b"{not json"), ModelFileError, "not valid JSON"),
    "config.json holds an array": (_write("config.json", b"[1, 2]"), ModelFileError, "an array"),
    "config.json not UTF-8": (_write("config.json", b"\xff\xfe{}"), ModelFileError, "UTF-8"),
    "config.json nested too deeply": (
        _write("config.json", b"[" * 200_000),
        ModelFileError,
        "config.json is not",
    ),
    "config.json too large": (
        _write("config.json", b" " * (2 * 1024 * 1024)),
        ModelFileError,
        "config.json has 2,097,152 bytes",
    ),
    "huge max_position_embeddings": (
        _config(max_position_embeddings=100_000_000_000),
        ModelSizeError,
        "max_position_embeddings=100000000000",
    ),
    "huge vocabulary": (_config(vocab_size=10**12), ModelSizeError, "vocab_size=1000000000000"),
    "a million layers": (_config(num_hidden_layers=10**6), ConfigError, "num_hidden_layers"),
    "a size as a string": (_config(hidden_size="8"), ConfigError, "hidden_size='8'"),
    "a size as a float": (_config(intermediate_size=16.0), ConfigError, "intermediate_size"),
    "zero heads": (_config(num_attention_heads=0), ConfigError, "num_attention_heads=0"),
    "negative layers": (_config(num_hidden_layers=-2), ConfigError, "num_hidden_layers=-2"),
    "heads that do not divide": (_config(num_attention_heads=3), ConfigError, "divisible"),
    "no vocab_size": (_config(vocab_size=None), ConfigError, "vocab_size"),
    "vocab_size below the tokenizer's": (_small_vocabulary, ConfigError, "vocab_size=8"),
    "unsupported model_type": (
        _write("config.json", json.dumps({"model_type": "gpt2", "n_embd": 768}).encode()),
        ConfigError,
        "model_type 'gpt2' is not supported (supported: bert, roberta, distilbert)",
    ),
    "unsupported activation": (_config(hidden_act="relu"), ConfigError, "hidden_act 'relu'"),
    "wrong tensor shape": (
        _weights(_wrong_shape),
        ParameterError,
        "encoder.layer.1.intermediate.dense.weight has shape (12, 8); config.json implies (16, 8)",
    ),
    "integer weights": (_weights(_integer_weights), ParameterError, "is I32"),
    "a missing tensor": (
        _weights(_missing_weight),
        ParameterError,
        "lacks encoder.layer.1.output.LayerNorm.bias",
    ),
    "truncated safetensors": (_truncated_weights, ModelFileError, "model.safetensors is truncated"),
    "a safetensors header that lies": (_header_that_lies, ModelFileError, "lies about"),
    "safetensors of 3 bytes": (_write("model.safetensors", b"abc"), ModelFileError, "3 bytes"),
    "safetensors with a huge header": (
        _write("model.safetensors", struct.pack("<Q", 2**40) + b"{}"),
        ModelFileError,
        "its header would be",
    ),
    "pytorch_model.bin only": (
        _only("pytorch_model.bin", "model.safetensors"),
        ModelFileError,
        "pytorch_model.bin (PyTorch pickle weights), a format this loader does not read",
    ),
    "sharded weights only": (
        _only("model.safetensors.index.json", "model.safetensors"),
        ModelFileError,
        "sharded safetensors",
    ),
    "vocab.txt only": (
        _only("vocab.txt", "tokenizer.json"),
        ModelFileError,
        "vocab.txt (a WordPiece vocabulary without tokenizer.json)",
    ),
    "tokenizer.json broken": (
        _write("tokenizer.json", b'{"model": 3}'),
        ModelFileError,
        "tokenizer.json is not a tokenizer file",
    ),
    "sentence_bert_config.json broken": (
        _write("sentence_bert_config.json", b"{"),
        ModelFileError,
        "sentence_bert_config.json is not valid JSON",
    ),
}
