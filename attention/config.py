"""The head configuration: one frozen dataclass whose invariants are checked on construction."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from attention.errors import ConfigError

PositionalEncoding = Literal["none", "sinusoidal", "learned", "rope", "alibi"]
POSITIONAL_ENCODINGS: tuple[str, ...] = get_args(PositionalEncoding)


@dataclass(frozen=True)
class AttentionConfig:
    """Everything that shapes one multi-head attention layer and its inputs.

    Field names follow ``torch.nn.MultiheadAttention`` where it has them (``kdim``, ``vdim``,
    ``bias``, ``add_bias_kv``, ``add_zero_attn``, ``dropout``).
    """

    d_model: int = 64
    num_heads: int = 4
    num_kv_heads: int | None = None  # grouped-query attention; None = num_heads, 1 = multi-query
    kdim: int | None = None  # width of key inputs (cross-attention); None = d_model
    vdim: int | None = None  # width of value inputs; None = d_model
    bias: bool = True
    add_bias_kv: bool = False
    add_zero_attn: bool = False
    scale: float | None = None  # None = 1/sqrt(head_dim)
    dropout: float = 0.0  # applied to the attention weights in training mode only
    causal: bool = False
    window: int | None = None  # keys at distance < window from the query; None = unlimited
    positional_encoding: PositionalEncoding = "sinusoidal"
    max_positions: int = 2048  # length of the learned position table
    rope_base: float = 10000.0
    vocab_size: int = 1024  # rows of the seeded table that integer token ids index
    seed: int = 0
    head_size: int | None = None  # a head's width when not d_model / num_heads (some decoders)

    def __post_init__(self) -> None:
        for check in (
            self._check_sizes,
            self._check_heads,
            self._check_numbers,
            self._check_positional,
        ):
            check()

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads if self.head_size is None else self.head_size

    @property
    def query_dim(self) -> int:
        """Width of the projected queries: all query heads side by side (d_model unless
        `head_size` says otherwise); the output projection maps it back to d_model."""
        return self.num_heads * self.head_dim

    @property
    def kv_heads(self) -> int:
        return self.num_heads if self.num_kv_heads is None else self.num_kv_heads

    @property
    def kv_dim(self) -> int:
        """Width of the projected keys and values: all K/V heads side by side."""
        return self.kv_heads * self.head_dim

    @property
    def key_dim(self) -> int:
        return self.d_model if self.kdim is None else self.kdim

    @property
    def value_dim(self) -> int:
        return self.d_model if self.vdim is None else self.vdim

    @property
    def packed_projection(self) -> bool:
        """True when Q, K and V come from one packed ``in_proj_weight``, as in PyTorch."""
        return self.key_dim == self.d_model and self.value_dim == self.d_model

    @property
    def resolved_scale(self) -> float:
        return 1.0 / math.sqrt(self.head_dim) if self.scale is None else self.scale

    def derived(self) -> dict[str, int | float]:
        """What the configuration implies, as an answer reports it beside what was given."""
        return {
            "num_kv_heads": self.kv_heads,
            "head_dim": self.head_dim,
            "scale": self.resolved_scale,
        }

    @property
    def extra_keys(self) -> int:
        """Keys appended after the sequence's own: ``bias_k`` and the zero key."""
        return int(self.add_bias_kv) + int(self.add_zero_attn)

    def replace(self, **changes: Any) -> AttentionConfig:
        return AttentionConfig(**{**asdict(self), **changes})

    def _check_sizes(self) -> None:
        for name in ("d_model", "num_heads", "max_positions", "vocab_size"):
            _require_positive_int(name, getattr(self, name))
        for name in ("num_kv_heads", "kdim", "vdim", "window", "head_size"):
            value = getattr(self, name)
            if value is not None:
                _require_positive_int(name, value)

    def _check_heads(self) -> None:
        if self.head_size is None and self.d_model % self.num_heads:
            raise ConfigError(
                f"d_model={self.d_model} is not divisible by num_heads={self.num_heads}",
                field="num_heads",
            )
        if self.num_heads % self.kv_heads:
            raise ConfigError(
                f"num_kv_heads={self.kv_heads} does not divide num_heads={self.num_heads}",
                field="num_kv_heads",
            )

    def _check_numbers(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)", field="dropout")
        if self.scale is not None and not (math.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(f"scale={self.scale} must be a finite number > 0", field="scale")
        if not (math.isfinite(self.rope_base) and self.rope_base > 1.0):
            raise ConfigError(
                f"rope_base={self.rope_base} must be finite and > 1", field="rope_base"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be an integer >= 0", field="seed")

    def _check_positional(self) -> None:
        encoding = self.positional_encoding
        if encoding not in POSITIONAL_ENCODINGS:
            raise ConfigError(
                f"positional_encoding={encoding!r} is not one of {', '.join(POSITIONAL_ENCODINGS)}",
                field="positional_encoding",
            )
        if encoding == "rope" and self.head_dim % 2:
            raise ConfigError(
                f"positional_encoding='rope' rotates pairs of dimensions, so head_dim="
                f"{self.head_dim} (d_model={self.d_model} / num_heads={self.num_heads}) "
                "must be even",
                field="positional_encoding",
            )
        if encoding in ("rope", "alibi") and self.extra_keys:
            # bias_k and the zero key sit at no position, so neither a rotation nor a distance
            # penalty is defined for them; refusing beats inventing one.
            raise ConfigError(
                f"positional_encoding={encoding!r} cannot be combined with add_bias_kv="
                f"{self.add_bias_kv} or add_zero_attn={self.add_zero_attn}: the extra keys have "
                "no position",
                field="positional_encoding",
            )


def _require_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be an integer >= 1", field=name)
