"""A BERT-format folder checked before any weight is read, and its small files.

In this order: the files (formats this loader does not read are named as such), config.json
(every size a positive integer), the tokenizer (its vocabulary fits config.json's vocab_size,
its maximum length from sentence-transformers' or the tokenizer's settings), the safetensors
header (every tensor the encoder needs is there, floating-point, of the shape config.json
implies, inside the file) and sentence-transformers' pooling (modules.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attention.bert.config import BertConfig
from attention.bert.pooling import MEAN_NORMALIZED, POOLING_MODES, Pooling
from attention.bert.tokenizer import WordPieceTokenizer
from attention.bert.weights import WEIGHTS_FILE, expected_weight_shapes, hf_key_map
from attention.errors import ConfigError
from attention.folders import files
from attention.folders.errors import ModelFileError
from attention.folders.safetensors_header import TensorEntry, check_tensors, read_header

CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
SENTENCE_CONFIG_FILE = "sentence_bert_config.json"  # optional: sentence-transformers' settings
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"  # optional: model_max_length
MODULES_FILE = "modules.json"  # optional: sentence-transformers' modules (pooling, Normalize)
SAFETENSORS_ADVICE = "save the model with safe_serialization=True"
UNSUPPORTED = {
    WEIGHTS_FILE: {
        "model.safetensors.index.json": (
            "sharded safetensors weights",
            "save the model with a max_shard_size larger than the model",
        ),
        "pytorch_model.bin": ("PyTorch pickle weights", SAFETENSORS_ADVICE),
        "tf_model.h5": ("TensorFlow weights", SAFETENSORS_ADVICE),
        "flax_model.msgpack": ("Flax weights", SAFETENSORS_ADVICE),
    },
    TOKENIZER_FILE: {
        "vocab.txt": (
            "a WordPiece vocabulary without tokenizer.json",
            "save a fast tokenizer (transformers' BertTokenizerFast) to get tokenizer.json",
        )
    },
}
"""What a folder may hold instead of a required file: the format that is not read, and what to
do about it."""
ROLES = {CONFIG_FILE: "configuration", WEIGHTS_FILE: "weights", TOKENIZER_FILE: "tokenizer"}


def check_folder(
    folder: Path, config: BertConfig
) -> tuple[WordPieceTokenizer, dict[str, TensorEntry], Pooling]:
    """Everything that can be checked before a weight is read, past config.json and the size:
    the files, the tokenizer against vocab_size, the safetensors header against the file's size
    and the tensors config.json implies, modules.json's pooling. The service's start-up scan
    calls it too, so that every worker refuses such a folder from the first request."""
    require_files(folder)
    tokenizer = WordPieceTokenizer.from_file(
        folder / TOKENIZER_FILE,
        max_length=_max_length(folder, config),
        pad_token_id=config.pad_token_id,
    )
    _check_vocabulary(tokenizer, config)
    entries = read_header(folder / WEIGHTS_FILE, folder)
    check_tensors(entries, expected_weight_shapes(config), hf_key_map(entries), WEIGHTS_FILE)
    return tokenizer, entries, read_pooling(folder)


def read_config(folder: Path) -> BertConfig:
    """The folder's config.json; a ConfigError's message names the file."""
    raw = files.read_json_object(folder / CONFIG_FILE, folder)
    try:
        return BertConfig.from_dict(raw)
    except ConfigError as error:
        raise ConfigError(f"{CONFIG_FILE}: {error.message}", field=error.field) from None


def _check_vocabulary(tokenizer: WordPieceTokenizer, config: BertConfig) -> None:
    """Every id the tokenizer can produce must have a row in the word embeddings."""
    ids = tokenizer.id_count
    if ids > config.vocab_size:
        raise ConfigError(
            f"{TOKENIZER_FILE} has ids up to {ids - 1} but {CONFIG_FILE} has "
            f"vocab_size={config.vocab_size}: the ids from {config.vocab_size} on would have "
            "no embedding (the tokenizer and the config are of different models)",
            field="vocab_size",
        )


def _max_length(folder: Path, config: BertConfig) -> int:
    """sentence-transformers' ``max_seq_length`` when the folder has one, else the tokenizer's
    ``model_max_length`` (tokenizer_config.json), else every position; never more positions
    than the model has."""
    for file, key in (
        (SENTENCE_CONFIG_FILE, "max_seq_length"),
        (TOKENIZER_CONFIG_FILE, "model_max_length"),
    ):
        settings = _optional_json(folder, file)
        length = None if settings is None else settings.get(key)
        if isinstance(length, int) and not isinstance(length, bool) and length > 0:
            return min(length, config.max_tokens)
    return config.max_tokens


def _optional_json(folder: Path, file: str) -> dict[str, Any] | None:
    path = folder / file
    found = files.kind(path, folder)
    if found is None:
        return None
    files.require_regular(path, folder, found)
    return files.read_json_object(path, folder)


def read_pooling(folder: Path) -> Pooling:
    """The sentence embedding of sentence-transformers' modules.json: its Pooling module's mode
    (exactly one of CLS, mean, max, last token) and whether a Normalize module follows."""
    path = folder / MODULES_FILE
    found = files.kind(path, folder)
    if found is None:
        return MEAN_NORMALIZED
    files.require_regular(path, folder, found)
    raw = files.read_json_bytes(path, folder)
    if not isinstance(raw, list) or not all(isinstance(module, dict) for module in raw):
        raise files.file_error(path, folder, "must hold a JSON array of module objects")
    types = {str(module.get("type", "")).rsplit(".", 1)[-1]: module for module in raw}
    if "Pooling" not in types:
        return MEAN_NORMALIZED
    where = types["Pooling"].get("path")
    if not isinstance(where, str) or not where or "/" in where or where in (".", ".."):
        raise files.file_error(path, folder, f"names the Pooling module's folder {where!r}")
    config = files.read_json_object(folder / where / CONFIG_FILE, folder)
    chosen = _pooling_modes(config)
    modes = [POOLING_MODES[name] for name in chosen if name in POOLING_MODES]
    if len(chosen) != 1 or len(modes) != 1:
        raise ConfigError(
            f"{where}/{CONFIG_FILE}: pooling {', '.join(chosen) or 'none'} is not supported "
            f"(supported: exactly one of {', '.join(dict.fromkeys(POOLING_MODES.values()))})",
            field="pooling",
        )
    return Pooling(modes[0], normalize="Normalize" in types)


def _pooling_modes(config: dict[str, Any]) -> list[str]:
    """The modes a Pooling config.json turns on: `pooling_mode` (a name, sentence-transformers 6)
    or the `pooling_mode_*` switches of earlier versions."""
    mode = config.get("pooling_mode")
    if isinstance(mode, str):
        return [mode]
    return [
        key for key, value in config.items() if key.startswith("pooling_mode_") and value is True
    ]


def require_files(folder: Path) -> None:
    """Name a missing file before reading any, so a broken folder fails at once."""
    for file, role in ROLES.items():
        found = files.kind(folder / file, folder)
        if found is None:
            raise _missing(folder, file, role)
        files.require_regular(folder / file, folder, found)


def _missing(folder: Path, file: str, role: str) -> ModelFileError:
    for other, (what, advice) in UNSUPPORTED.get(file, {}).items():
        if files.kind(folder / other, folder) is not None:
            return files.file_error(
                folder / file,
                folder,
                f"is missing; the folder has {other} ({what}), a format this loader does not "
                f"read: {advice}",
            )
    return files.file_error(folder / file, folder, f"is missing: the model's {role} file")
