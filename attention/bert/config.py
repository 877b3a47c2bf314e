"""BertConfig: the fields of a HuggingFace BERT ``config.json`` that shape the encoder."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from attention.config import AttentionConfig
from attention.errors import ConfigError

_INT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)
_SUPPORTED = {
    "model_type": ("bert",),
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
        missing = [name for name in _INT_FIELDS[:6] if name not in raw]
        if missing:
            raise ConfigError(f"config.json lacks {', '.join(missing)}", field=missing[0])
        return cls(**{key: value for key, value in raw.items() if key in known})

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

    def _check_supported(self) -> None:
        for name, allowed in _SUPPORTED.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(
                    f"{name}={value!r} is not supported; this encoder implements "
                    f"{' or '.join(map(repr, allowed))}",
                    field=name,
                )


def _require_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be an integer >= 1", field=name)
