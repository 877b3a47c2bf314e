"""Small builders shared by the attention tests: modules, inputs, masks, the PyTorch reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from attention import AttentionConfig, MultiHeadAttention

TOLERANCE: dict[torch.dtype, float] = {torch.float32: 1e-5, torch.float64: 1e-10}
"""Largest absolute difference accepted between two computations of the same numbers."""

NEG_INF = float("-inf")

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def config(**fields: Any) -> AttentionConfig:
    """A small configuration with no positional encoding unless a test asks for one."""
    defaults: dict[str, Any] = {"d_model": 8, "num_heads": 2, "positional_encoding": "none"}
    return AttentionConfig(**{**defaults, **fields})


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randomize_(module: ModuleT, seed: int, std: float = 0.5) -> ModuleT:
    """Draw every parameter from N(0, std²), biases included (their default init is zero)."""
    draw = generator(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=draw, dtype=torch.float64) * std)
    return module


def module(
    cfg: AttentionConfig, dtype: torch.dtype = torch.float64, seed: int = 0
) -> MultiHeadAttention:
    """A MultiHeadAttention in eval mode whose every parameter, biases included, is random."""
    layer = MultiHeadAttention(cfg, generator(seed)).to(dtype).eval()
    randomize_(layer, seed + 1)
    return layer


def reference(cfg: AttentionConfig, dtype: torch.dtype = torch.float64) -> nn.MultiheadAttention:
    """The torch.nn.MultiheadAttention with the same head layout as `cfg` (batch first)."""
    layer = nn.MultiheadAttention(
        cfg.d_model,
        cfg.num_heads,
        bias=cfg.bias,
        add_bias_kv=cfg.add_bias_kv,
        add_zero_attn=cfg.add_zero_attn,
        kdim=cfg.kdim,
        vdim=cfg.vdim,
        batch_first=True,
    )
    return layer.to(dtype).eval()


@dataclass
class Inputs:
    query: Tensor  # (B, L, d_model)
    key: Tensor  # (B, S, kdim)
    value: Tensor  # (B, S, vdim)


def inputs(
    cfg: AttentionConfig,
    batch: int,
    length: int,
    source_length: int,
    *,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
    self_attention: bool = False,
) -> Inputs:
    """Random query, key and value; with `self_attention` all three are one tensor."""
    draw = generator(seed)

    def normal(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=draw, dtype=torch.float64).to(dtype)

    query = normal(batch, length, cfg.d_model)
    if self_attention:
        return Inputs(query, query, query)
    return Inputs(
        query,
        normal(batch, source_length, cfg.key_dim),
        normal(batch, source_length, cfg.value_dim),
    )


def random_bool_mask(shape: tuple[int, ...], probability: float, seed: int) -> Tensor:
    """True ("may not attend") with the given probability, independently per entry."""
    return torch.rand(shape, generator=generator(seed)) < probability


def as_float_mask(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """The additive float form of a boolean mask: -inf where blocked, 0 elsewhere."""
    return torch.zeros(mask.shape, dtype=dtype).masked_fill(mask, NEG_INF)


def max_abs_diff(a: Tensor, b: Tensor) -> float:
    assert a.shape == b.shape, f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}"
    if a.numel() == 0:
        return 0.0
    return float((a.detach().double() - b.detach().double()).abs().max())


def assert_close(actual: Tensor, expected: Tensor, dtype: torch.dtype) -> None:
    difference = max_abs_diff(actual, expected)
    assert difference <= TOLERANCE[dtype], f"max abs difference {difference:.3g} ({dtype})"
