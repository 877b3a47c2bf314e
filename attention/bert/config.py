"""BertConfig: the fields of a HuggingFace BERT ``config.json`` that shape the encoder."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

from attention.config import AttentionConfig
from attention.errors import ConfigError
from attention.folders.errors import ModelSizeError

GiB = 1024**3
MAX_LAYERS = 1024  # published BERTs have 2 to 48

_INT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)
SUPPORTED_MODEL_TYPES = ("bert", "roberta", "distilbert")
_SUPPORTED = {
    "model_type": SUPPORTED_MODEL_TYPES,
    "hidden_act": ("gelu",),  # HuggingFace's "gelu" is the exact, erf-based GELU
    "position_embedding_type": ("absolute",),
}


@dataclass(frozen=True)
class BertConfig:
    """The encoder's sizes; names and defaults are those of HuggingFace's ``BertConfig``."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    hidden_act: str = "gelu"
    position_embedding_type: str = "absolute"
    model_type: str = "bert"

    def __post_init__(self) -> None:
        for name in _INT_FIELDS:
            _require_positive_int(name, getattr(self, name))
        self._check_numbers()
        self._check_supported()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> BertConfig:
        """The known keys of a ``config.json`` mapping; the others are ignored."""
        known = {f.name for f in fields(cls)}
        # another architecture names its sizes differently: say so rather than "lacks vocab_size"
        _check_supported("model_type", raw.get("model_type", "bert"))
        if raw.get("model_type") == "distilbert":
            raw = _distilbert_fields(raw)
        missing = [name for name in _INT_FIELDS[:6] if name not in raw]
        if missing:
            raise ConfigError(f"{', '.join(missing)} missing", field=missing[0])
        return cls(**{key: value for key, value in raw.items() if key in known})

    @property
    def position_offset(self) -> int:
        """The first position's row: RoBERTa numbers positions from pad_token_id + 1, as its
        Fairseq origin did; BERT from 0."""
        return self.pad_token_id + 1 if self.model_type == "roberta" else 0

    @property
    def max_tokens(self) -> int:
        """Tokens a sequence may have: the position rows from the offset on."""
        return self.max_position_embeddings - self.position_offset

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def attention_config(self) -> AttentionConfig:
        """The project's head configuration for one BERT self-attention layer."""
        return AttentionConfig(
            d_model=self.hidden_size,
            num_heads=self.num_attention_heads,
            bias=True,
            positional_encoding="none",  # BERT adds learned positions to the embeddings
            dropout=0.0,
            max_positions=self.max_position_embeddings,
        )

    def _check_numbers(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}",
                field="num_attention_heads",
            )
        eps = self.layer_norm_eps
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < math.inf:
            raise ConfigError(
                f"layer_norm_eps={eps!r} must be a number > 0", field="layer_norm_eps"
            )
        pad = self.pad_token_id
        if isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < self.vocab_size:
            raise ConfigError(
                f"pad_token_id={pad!r} must be an id below vocab_size={self.vocab_size}",
                field="pad_token_id",
            )

        if self.max_tokens < 1:
            raise ConfigError(
                f"max_position_embeddings={self.max_position_embeddings} leaves no position for "
                f"a token: RoBERTa's start at pad_token_id + 1 = {self.position_offset}",
                field="max_position_embeddings",
            )

    def _check_supported(self) -> None:
        for name in _SUPPORTED:
            _check_supported(name, getattr(self, name))


def _check_supported(name: str, value: object) -> None:
    allowed = _SUPPORTED[name]
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(
            f"{name} {value!r} is not supported (supported: {', '.join(allowed)})", field=name
        )


DISTILBERT_NAMES = {
    "dim": "hidden_size", "n_layers": "num_hidden_layers", "n_heads": "num_attention_heads",
    "hidden_dim": "intermediate_size", "activation": "hidden_act",
}  # fmt: skip
"""DistilBERT's config.json names for BERT's fields."""


def _distilbert_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """DistilBERT's sizes under BERT's names: the same post-LayerNorm layers, without token
    types (one type row, left at zero) and with its 1e-12 LayerNorm epsilon."""
    fields_ = {DISTILBERT_NAMES.get(key, key): value for key, value in raw.items()}
    return fields_ | {"type_vocab_size": 1, "layer_norm_eps": 1e-12}


def _require_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be an integer >= 1", field=name)


# -- size, from the configuration alone ---------------------------------------------------------


def parameter_counts(config: BertConfig) -> dict[str, int]:
    """The encoder's parameters by part, as ``BertModel(config)`` allocates them (no pooler).

    A layer holds the packed query/key/value and output projections (4·E² + 4·E), two
    LayerNorms (4·E) and the feed-forward W_1, W_2 with biases (2·E·I + I + E).
    """
    width, inner = config.hidden_size, config.intermediate_size
    per_layer = 4 * width * width + 4 * width + 4 * width + 2 * width * inner + inner + width
    return {
        "word_embeddings": config.vocab_size * width,
        "position_embeddings": config.max_position_embeddings * width,
        "token_type_embeddings": config.type_vocab_size * width,
        "embedding_norm": 2 * width,
        "layers": config.num_hidden_layers * per_layer,
    }


_PART_FORMULAS = {
    "word_embeddings": ("vocab_size", "hidden_size"),
    "position_embeddings": ("max_position_embeddings", "hidden_size"),
    "token_type_embeddings": ("type_vocab_size", "hidden_size"),
    "embedding_norm": ("hidden_size",),
    "layers": ("num_hidden_layers", "hidden_size", "intermediate_size"),
}
"""The config.json fields each part grows with, to name the culprit of an oversized model."""


def num_parameters(config: BertConfig) -> int:
    """How many parameters ``BertModel(config)`` has, computed without allocating any."""
    return sum(parameter_counts(config).values())


def parameter_bytes(config: BertConfig, dtype: torch.dtype = torch.float32) -> int:
    """The bytes of ``BertModel(config)``'s parameters in `dtype`, computed without allocating."""
    return num_parameters(config) * dtype.itemsize


def check_model_size(config: BertConfig, dtype: torch.dtype, max_bytes: int) -> int:
    """The model's parameter bytes in `dtype`; ModelSizeError past `max_bytes`, naming the part
    and the config.json fields that make it large. The layers are also bounded by count: each
    is a few Python objects that no byte count sees, so a million layers of width 1 would pass
    `max_bytes` and still exhaust the memory."""
    if config.num_hidden_layers > MAX_LAYERS:
        raise ConfigError(
            f"config.json: num_hidden_layers={config.num_hidden_layers} is more than the "
            f"{MAX_LAYERS} layers this loader builds",
            field="num_hidden_layers",
        )
    needed = parameter_bytes(config, dtype)
    if needed <= max_bytes:
        return needed
    counts = parameter_counts(config)
    largest = max(counts, key=lambda part: counts[part])
    sizes = " × ".join(f"{name}={getattr(config, name)}" for name in _PART_FORMULAS[largest])
    raise ModelSizeError(
        f"config.json describes {num_parameters(config):,} parameters, {format_bytes(needed)} "
        f"in {str(dtype).removeprefix('torch.')}, over the limit of {format_bytes(max_bytes)} "
        f"(largest part: {largest}, {sizes})",
        needed_bytes=needed,
        max_bytes=max_bytes,
    )


def format_bytes(count: int) -> str:
    """1536 -> '1.5 KiB': binary units, one decimal."""
    value, unit = float(count), "bytes"
    for next_unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024:
            break
        value, unit = value / 1024, next_unit
    return f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
