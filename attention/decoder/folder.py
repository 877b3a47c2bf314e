"""A Hugging Face decoder folder checked before any weight is read.

In this order, past config.json and the model's size: the tokenizer (tokenizer.json, its
vocabulary against config.json's vocab_size), the weight files (model.safetensors, or shards
with their index; formats this loader does not read are named as such), every safetensors
header against the file's size and the shapes config.json implies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from attention.bert.tokenizer import WordPieceTokenizer
from attention.decoder.config import DecoderConfig
from attention.decoder.weights import expected_shapes, file_names
from attention.errors import ConfigError
from attention.folders import files
from attention.folders.checkpoint import INDEX_FILE, WEIGHTS_FILE, read_entries
from attention.folders.checkpoint import weight_files as find_weight_files
from attention.folders.errors import ModelFileError
from attention.folders.safetensors_header import check_tensors

CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
OTHER_WEIGHTS = {
    "pytorch_model.bin": "PyTorch pickle weights",
    "tf_model.h5": "TensorFlow weights",
    "flax_model.msgpack": "Flax weights",
}
OTHER_TOKENIZERS = {
    "tokenizer.model": "a SentencePiece model without tokenizer.json",
    "vocab.json": "a BPE vocabulary without tokenizer.json",
}


@dataclass(frozen=True)
class CheckedFolder:
    """What `check_folder` read: the tokenizer, and where each tensor the decoder needs is."""

    tokenizer: WordPieceTokenizer
    names: dict[str, str]  # Hugging Face's name -> the file's (prefixed or not)
    where: dict[str, Path]  # the file's name -> the file holding it


def check_folder(folder: Path, config: DecoderConfig) -> CheckedFolder:
    """Everything that can be checked before a weight is read, past config.json and the size:
    the tokenizer against vocab_size, the weight files, every safetensors header against the
    file's size and against the tensors config.json implies. The service's start-up scan calls
    it too, so that every worker refuses such a folder from the first request."""
    tokenizer = read_tokenizer(folder, config)
    tensor_files = find_weight_files(folder)
    if tensor_files is None:
        raise _missing(
            folder,
            WEIGHTS_FILE,
            "weights",
            OTHER_WEIGHTS,
            "save the model with safe_serialization=True",
        )
    entries, where = read_entries(folder, tensor_files)
    names = file_names(config, entries)
    label = WEIGHTS_FILE if "" in tensor_files else INDEX_FILE
    check_tensors(entries, expected_shapes(config), names, label, config.model_type)
    return CheckedFolder(tokenizer, names, where)


def read_decoder_config(folder: Path) -> DecoderConfig:
    raw = files.read_required_object(folder / CONFIG_FILE, folder, files.CONFIG_ROLE)
    try:
        return DecoderConfig.from_dict(raw)
    except ConfigError as error:
        raise ConfigError(f"{CONFIG_FILE}: {error.message}", field=error.field) from None


def read_tokenizer(folder: Path, config: DecoderConfig) -> WordPieceTokenizer:
    path = folder / TOKENIZER_FILE
    found = files.kind(path, folder)
    if found is None:
        raise _missing(
            folder,
            TOKENIZER_FILE,
            "tokenizer",
            OTHER_TOKENIZERS,
            "save a fast tokenizer to get tokenizer.json",
        )
    files.require_regular(path, folder, found)
    tokenizer = WordPieceTokenizer.from_file(path, max_length=config.max_positions)
    if tokenizer.id_count > config.vocab_size:
        raise ConfigError(
            f"{TOKENIZER_FILE} has ids up to {tokenizer.id_count - 1} but {CONFIG_FILE} has "
            f"vocab_size={config.vocab_size}: the ids from {config.vocab_size} on would have "
            "no embedding (the tokenizer and the config are of different models)",
            field="vocab_size",
        )
    return tokenizer


def _missing(
    folder: Path, file: str, role: str, others: Mapping[str, str], advice: str
) -> ModelFileError:
    for other, what in others.items():
        if files.kind(folder / other, folder) is not None:
            return files.file_error(
                folder / file, folder,
                f"is missing; the folder has {other} ({what}), a format this loader does not "
                f"read: {advice}",
            )  # fmt: skip
    return files.file_error(folder / file, folder, f"is missing: the model's {role} file")
