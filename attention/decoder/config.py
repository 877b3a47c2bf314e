"""DecoderConfig: what shapes a decoder, read from the config.json of a GPT-2, Llama, Mistral or
Qwen2 folder; any other model_type is refused with the list of those supported.

The families differ in a few switches, each a field here: learned positions or RoPE (with its
`rope_theta`), LayerNorm or RMSNorm, a GELU or a gated SiLU feed-forward (SwiGLU), biases on the
projections, a sliding window per layer, the output head tied to the token embeddings or not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from attention.bert.config import MAX_LAYERS
from attention.config import AttentionConfig
from attention.errors import ConfigError

SUPPORTED_MODEL_TYPES = ("gpt2", "llama", "mistral", "qwen2")
ROTARY_TYPES = ("llama", "mistral", "qwen2")
GPT2_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh", "gelu", "relu")
Activation = Literal["gelu_new", "gelu_pytorch_tanh", "gelu", "relu", "silu"]


@dataclass(frozen=True)
class DecoderConfig:
    """A decoder's sizes and switches, under one set of names for every family."""

    model_type: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    max_positions: int
    norm_eps: float
    activation: Activation
    rope_theta: float | None  # None: learned absolute positions (GPT-2)
    qkv_bias: bool
    output_bias: bool
    mlp_bias: bool
    windows: tuple[int | None, ...]  # per layer: keys at distance < window, None = all
    tie_word_embeddings: bool
    scale: float | None = None  # None = 1/sqrt(head_dim)
    eos_token_ids: tuple[int, ...] = ()

    @property
    def gated(self) -> bool:
        """A SwiGLU feed-forward (gate, up, down) rather than GPT-2's two layers."""
        return self.model_type in ROTARY_TYPES

    @property
    def rms_norm(self) -> bool:
        return self.model_type in ROTARY_TYPES

    def attention_config(self, layer: int) -> AttentionConfig:
        """The project's head configuration for layer `layer`'s self-attention."""
        return AttentionConfig(
            d_model=self.hidden_size,
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads,
            head_size=self.head_dim,
            bias=self.qkv_bias or self.output_bias,
            scale=self.scale,
            dropout=0.0,
            causal=True,
            window=self.windows[layer],
            positional_encoding="none" if self.rope_theta is None else "rope",
            rope_base=self.rope_theta or 10000.0,
            max_positions=self.max_positions,
        )

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DecoderConfig:
        """A config.json mapping; every field checked, the unknown ones ignored."""
        model_type = raw.get("model_type")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ConfigError(
                f"model_type {model_type!r} is not supported "
                f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)})",
                field="model_type",
            )
        config = _gpt2(raw) if model_type == "gpt2" else _rotary(raw, model_type)
        config.check()
        return config

    def check(self) -> None:
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"num_key_value_heads={self.num_kv_heads} does not divide "
                f"num_attention_heads={self.num_heads}",
                field="num_key_value_heads",
            )
        if self.rope_theta is not None and self.head_dim % 2:
            raise ConfigError(
                f"head_dim={self.head_dim} must be even: RoPE rotates pairs of dimensions",
                field="head_dim",
            )
        if self.num_layers > MAX_LAYERS:
            raise ConfigError(
                f"num_hidden_layers={self.num_layers} is more than the {MAX_LAYERS} layers this "
                "loader builds",
                field="num_hidden_layers",
            )


def _gpt2(raw: Mapping[str, Any]) -> DecoderConfig:
    width = _positive_int(raw, "n_embd")
    heads = _positive_int(raw, "n_head")
    if width % heads:
        raise ConfigError(f"n_embd={width} is not divisible by n_head={heads}", field="n_head")
    for switch in ("scale_attn_by_inverse_layer_idx", "add_cross_attention"):
        if raw.get(switch, False) is not False:
            raise ConfigError(
                f"{switch}={raw[switch]!r} is not supported (only false)", field=switch
            )
    inner = raw.get("n_inner")
    activation = _choice(raw, "activation_function", GPT2_ACTIVATIONS, "gelu_new")
    layers = _positive_int(raw, "n_layer")
    scale_weights = raw.get("scale_attn_weights", True)
    return DecoderConfig(
        model_type="gpt2",
        vocab_size=_positive_int(raw, "vocab_size"),
        hidden_size=width,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=width // heads,
        intermediate_size=4 * width if inner is None else _positive_int(raw, "n_inner"),
        max_positions=_positive_int(raw, "n_positions"),
        norm_eps=_positive_number(raw, "layer_norm_epsilon", 1e-5),
        activation=activation,  # type: ignore[arg-type]
        rope_theta=None,
        qkv_bias=True,
        output_bias=True,
        mlp_bias=True,
        windows=(None,) * layers,
        tie_word_embeddings=_flag(raw, "tie_word_embeddings", True),
        scale=None if scale_weights is not False else 1.0,
        eos_token_ids=_token_ids(raw),
    )


def _rotary(raw: Mapping[str, Any], model_type: str) -> DecoderConfig:
    width = _positive_int(raw, "hidden_size")
    heads = _positive_int(raw, "num_attention_heads")
    head_dim = raw.get("head_dim")
    if head_dim is None:
        if width % heads:
            raise ConfigError(
                f"hidden_size={width} is not divisible by num_attention_heads={heads} and "
                "config.json gives no head_dim",
                field="num_attention_heads",
            )
        head_dim = width // heads
    else:
        head_dim = _positive_int(raw, "head_dim")
    kv_heads = raw.get("num_key_value_heads")
    layers = _positive_int(raw, "num_hidden_layers")
    _choice(raw, "hidden_act", ("silu",), "silu")
    attention_bias = _flag(raw, "attention_bias", False) if model_type == "llama" else False
    return DecoderConfig(
        model_type=model_type,
        vocab_size=_positive_int(raw, "vocab_size"),
        hidden_size=width,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=heads if kv_heads is None else _positive_int(raw, "num_key_value_heads"),
        head_dim=head_dim,
        intermediate_size=_positive_int(raw, "intermediate_size"),
        max_positions=_positive_int(raw, "max_position_embeddings"),
        norm_eps=_positive_number(raw, "rms_norm_eps", 1e-6),
        activation="silu",
        rope_theta=_rope_theta(raw),
        qkv_bias=attention_bias or model_type == "qwen2",
        output_bias=attention_bias,
        mlp_bias=_flag(raw, "mlp_bias", False) if model_type == "llama" else False,
        windows=_windows(raw, model_type, layers),
        tie_word_embeddings=_flag(raw, "tie_word_embeddings", False),
        eos_token_ids=_token_ids(raw),
    )


def _rope_theta(raw: Mapping[str, Any]) -> float:
    """`rope_parameters` (transformers 5) or `rope_theta` and `rope_scaling` (earlier): only the
    default, unscaled rotation is supported."""
    parameters = raw.get("rope_parameters")
    if parameters is None:
        scaling = raw.get("rope_scaling")
        parameters = {"rope_type": "default", "rope_theta": raw.get("rope_theta", 10000.0)}
        if scaling is not None:
            if not isinstance(scaling, dict):
                raise ConfigError(
                    f"rope_scaling={scaling!r} must be an object", field="rope_scaling"
                )
            parameters |= {"rope_type": scaling.get("rope_type", scaling.get("type"))}
    if not isinstance(parameters, dict):
        raise ConfigError(
            f"rope_parameters={parameters!r} must be an object", field="rope_parameters"
        )
    kind = parameters.get("rope_type", "default")
    if kind != "default":
        raise ConfigError(
            f"rope scaling {kind!r} is not supported (supported: default, no scaling)",
            field="rope_scaling",
        )
    theta = parameters.get("rope_theta", 10000.0)
    if isinstance(theta, bool) or not isinstance(theta, int | float) or not 1 < theta < math.inf:
        raise ConfigError(f"rope_theta={theta!r} must be a number > 1", field="rope_theta")
    return float(theta)


def _windows(raw: Mapping[str, Any], model_type: str, layers: int) -> tuple[int | None, ...]:
    """Each layer's sliding window: Mistral's on every layer; Qwen2's where `layer_types` says
    ``sliding_attention`` (or, in older files, from `max_window_layers` on when
    `use_sliding_window`); Llama has none."""
    if model_type == "llama" or raw.get("sliding_window") is None:
        return (None,) * layers
    window = _positive_int(raw, "sliding_window")
    kinds = raw.get("layer_types")
    if kinds is not None:
        if not isinstance(kinds, list) or len(kinds) != layers:
            raise ConfigError(
                f"layer_types must list one kind per layer ({layers})", field="layer_types"
            )
        return tuple(window if kind == "sliding_attention" else None for kind in kinds)
    if model_type == "mistral":
        return (window,) * layers
    if not raw.get("use_sliding_window", False):
        return (None,) * layers
    first = raw.get("max_window_layers", layers)
    first = first if isinstance(first, int) else layers
    return tuple(window if index >= first else None for index in range(layers))


def _token_ids(raw: Mapping[str, Any]) -> tuple[int, ...]:
    eos = raw.get("eos_token_id")
    ids = eos if isinstance(eos, list) else [eos]
    return tuple(i for i in ids if isinstance(i, int) and not isinstance(i, bool) and i >= 0)


def _positive_int(raw: Mapping[str, Any], name: str) -> int:
    if name not in raw:
        raise ConfigError(f"{name} missing", field=name)
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be an integer >= 1", field=name)
    return value


def _positive_number(raw: Mapping[str, Any], name: str, default: float) -> float:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ConfigError(f"{name}={value!r} must be a number > 0", field=name)
    return float(value)


def _flag(raw: Mapping[str, Any], name: str, default: bool) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} must be true or false", field=name)
    return value


def _choice(raw: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = raw.get(name, default)
    if value not in allowed:
        raise ConfigError(
            f"{name} {value!r} is not supported (supported: {', '.join(allowed)})", field=name
        )
    return str(value)
