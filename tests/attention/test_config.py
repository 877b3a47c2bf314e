"""AttentionConfig: the invariants it checks on construction and the sizes it derives."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from attention import AttentionConfig, AttentionError, ConfigError

INVALID: list[tuple[dict[str, Any], str, str]] = [
    # (fields, the field named, a fragment of the message)
    ({"d_model": 64, "num_heads": 10}, "num_heads", "d_model=64 is not divisible by num_heads=10"),
    (
        {"num_heads": 4, "num_kv_heads": 3},
        "num_kv_heads",
        "num_kv_heads=3 does not divide num_heads=4",
    ),
    (
        {"num_heads": 4, "num_kv_heads": 8},
        "num_kv_heads",
        "num_kv_heads=8 does not divide num_heads=4",
    ),
    ({"d_model": 0}, "d_model", "d_model=0 must be an integer >= 1"),
    ({"d_model": 64.0}, "d_model", "d_model=64.0 must be an integer >= 1"),
    ({"num_heads": 0}, "num_heads", "num_heads=0 must be an integer >= 1"),
    ({"num_heads": True}, "num_heads", "num_heads=True must be an integer >= 1"),
    ({"num_kv_heads": 0}, "num_kv_heads", "num_kv_heads=0 must be an integer >= 1"),
    ({"kdim": 0}, "kdim", "kdim=0 must be an integer >= 1"),
    ({"vdim": -3}, "vdim", "vdim=-3 must be an integer >= 1"),
    ({"window": 0}, "window", "window=0 must be an integer >= 1"),
    ({"max_positions": 0}, "max_positions", "max_positions=0 must be an integer >= 1"),
    ({"vocab_size": 0}, "vocab_size", "vocab_size=0 must be an integer >= 1"),
    ({"dropout": 1.0}, "dropout", "dropout=1.0 must be in [0, 1)"),
    ({"dropout": -0.1}, "dropout", "dropout=-0.1 must be in [0, 1)"),
    ({"dropout": math.nan}, "dropout", "dropout=nan must be in [0, 1)"),
    ({"scale": 0.0}, "scale", "scale=0.0 must be a finite number > 0"),
    ({"scale": -1.0}, "scale", "scale=-1.0 must be a finite number > 0"),
    ({"scale": math.inf}, "scale", "scale=inf must be a finite number > 0"),
    ({"scale": math.nan}, "scale", "scale=nan must be a finite number > 0"),
    ({"rope_base": 1.0}, "rope_base", "rope_base=1.0 must be finite and > 1"),
    ({"rope_base": math.inf}, "rope_base", "rope_base=inf must be finite and > 1"),
    ({"seed": -1}, "seed", "seed=-1 must be an integer >= 0"),
    ({"seed": 1.5}, "seed", "seed=1.5 must be an integer >= 0"),
    ({"seed": True}, "seed", "seed=True must be an integer >= 0"),
    (
        {"positional_encoding": "relative"},
        "positional_encoding",
        "positional_encoding='relative' is not one of none, sinusoidal, learned, rope, alibi",
    ),
    (
        {"d_model": 6, "num_heads": 2, "positional_encoding": "rope"},
        "positional_encoding",
        "head_dim=3 (d_model=6 / num_heads=2) must be even",
    ),
    (
        {"positional_encoding": "rope", "add_bias_kv": True},
        "positional_encoding",
        "positional_encoding='rope' cannot be combined with add_bias_kv=True",
    ),
    (
        {"positional_encoding": "rope", "add_zero_attn": True},
        "positional_encoding",
        "cannot be combined with add_bias_kv=False or add_zero_attn=True",
    ),
    (
        {"positional_encoding": "alibi", "add_bias_kv": True},
        "positional_encoding",
        "positional_encoding='alibi' cannot be combined with add_bias_kv=True",
    ),
    (
        {"positional_encoding": "alibi", "add_zero_attn": True},
        "positional_encoding",
        "add_zero_attn=True: the extra keys have no position",
    ),
]


@pytest.mark.parametrize(("fields", "field", "message"), INVALID, ids=[m for _, _, m in INVALID])
def test_invalid_configuration_raises_config_error_naming_fields_and_values(
    fields: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        AttentionConfig(**fields)
    assert message in str(caught.value)
    assert caught.value.field == field


def test_config_error_is_an_attention_error_and_a_value_error() -> None:
    with pytest.raises(ConfigError) as caught:
        AttentionConfig(d_model=64, num_heads=10)
    assert isinstance(caught.value, AttentionError)
    assert isinstance(caught.value, ValueError)
    assert caught.value.message == str(caught.value)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"d_model": 64, "num_heads": 8, "num_kv_heads": 1},
        {"d_model": 64, "num_heads": 8, "num_kv_heads": 8},
        {"positional_encoding": "rope", "causal": True, "window": 1},
        {"positional_encoding": "alibi", "kdim": 3, "vdim": 5},
        {"positional_encoding": "none", "add_bias_kv": True, "add_zero_attn": True},
        {"dropout": 0.0, "scale": 1e-3, "seed": 2**40},
        {"d_model": 5, "num_heads": 5, "positional_encoding": "sinusoidal"},
    ],
)
def test_valid_configuration_is_accepted(fields: dict[str, Any]) -> None:
    assert AttentionConfig(**fields) == AttentionConfig(**fields)


def test_derived_sizes_of_a_grouped_cross_attention_layer() -> None:
    cfg = AttentionConfig(d_model=64, num_heads=8, num_kv_heads=2, kdim=10, vdim=12)
    assert (cfg.head_dim, cfg.kv_heads, cfg.kv_dim) == (8, 2, 16)
    assert (cfg.key_dim, cfg.value_dim) == (10, 12)
    assert not cfg.packed_projection
    assert cfg.resolved_scale == pytest.approx(1 / math.sqrt(8))


def test_defaults_give_plain_multi_head_self_attention() -> None:
    cfg = AttentionConfig(d_model=64, num_heads=4)
    assert (cfg.kv_heads, cfg.kv_dim, cfg.key_dim, cfg.value_dim) == (4, 64, 64, 64)
    assert cfg.packed_projection
    assert cfg.extra_keys == 0


def test_kdim_and_vdim_equal_to_d_model_keep_the_packed_layout() -> None:
    assert AttentionConfig(d_model=16, kdim=16, vdim=16).packed_projection
    assert not AttentionConfig(d_model=16, kdim=16, vdim=8).packed_projection


def test_explicit_scale_replaces_one_over_root_head_dim() -> None:
    assert AttentionConfig(scale=0.5).resolved_scale == 0.5


@pytest.mark.parametrize(
    ("add_bias_kv", "add_zero_attn", "extra"),
    [(False, False, 0), (True, False, 1), (True, True, 2)],
)
def test_extra_keys_count_bias_k_and_the_zero_key(
    add_bias_kv: bool, add_zero_attn: bool, extra: int
) -> None:
    cfg = AttentionConfig(
        add_bias_kv=add_bias_kv, add_zero_attn=add_zero_attn, positional_encoding="none"
    )
    assert cfg.extra_keys == extra


def test_config_is_frozen_and_hashable() -> None:
    cfg = AttentionConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.d_model = 32  # type: ignore[misc]
    assert hash(cfg) == hash(AttentionConfig())


def test_replace_checks_the_new_configuration() -> None:
    cfg = AttentionConfig(d_model=64, num_heads=4)
    assert cfg.replace(num_heads=8).head_dim == 8
    with pytest.raises(ConfigError, match="d_model=64 is not divisible by num_heads=10"):
        cfg.replace(num_heads=10)
