"""Positional encodings: the additive kinds (sinusoidal, learned) added to the token embeddings,
and the kinds that act inside attention (RoPE rotates q and k, ALiBi biases the scores)."""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn

from attention.errors import ShapeError


def sinusoidal_table(length: int, d_model: int, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """(L, d_model): PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(same angle)."""
    positions = torch.arange(length, dtype=torch.float64)[:, None]
    rates = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model)
    )
    angles = positions * rates  # (L, ceil(d/2))
    table = torch.zeros(length, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return table.to(dtype)


class SinusoidalPositions(nn.Module):
    """The fixed encoding of "Attention Is All You Need", grown on demand and kept."""

    table: Tensor

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.register_buffer("table", sinusoidal_table(0, d_model), persistent=False)

    def forward(self, length: int) -> Tensor:
        table: Tensor = self.table
        if table.shape[0] < length:
            # computed in float64 and rounded once, to the precision the module was moved to
            rows = max(length, 2 * table.shape[0])
            grown = sinusoidal_table(rows, self.d_model, dtype=table.dtype)
            self.table = table = grown.to(table.device)
        return table[:length]


class LearnedPositions(nn.Module):
    """A trainable table of position vectors, drawn from the seed like GPT-2's (std 0.02)."""

    def __init__(self, max_positions: int, d_model: int, generator: torch.Generator) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_positions, d_model))
        nn.init.normal_(self.weight, std=0.02, generator=generator)

    def forward(self, length: int) -> Tensor:
        if length > self.weight.shape[0]:
            raise ShapeError(
                f"{length} positions do not fit the learned position table of "
                f"max_positions={self.weight.shape[0]}",
                field="max_positions",
            )
        return self.weight[:length]


def rope_angles(length: int, head_dim: int, base: float, device: torch.device) -> Tensor:
    """(L, head_dim / 2) rotation angles p · base^(-2i/d)."""
    inverse_frequencies = base ** (
        -torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim
    )
    positions = torch.arange(length, dtype=torch.float64, device=device)
    return positions[:, None] * inverse_frequencies[None, :]


@functools.lru_cache(maxsize=32)
def rope_tables(
    length: int, head_dim: int, base: float, device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """cos and sin of the angles, each (L, head_dim) with the half-angles repeated: computed once
    per size, device and dtype, not once per request."""
    with torch.inference_mode(False):  # ordinary tensors: usable inside and outside that mode
        angles = rope_angles(length, head_dim, base, device)
        cos = torch.cat([angles.cos(), angles.cos()], dim=-1).to(dtype)
        sin = torch.cat([angles.sin(), angles.sin()], dim=-1).to(dtype)
    return cos, sin


def apply_rope(x: Tensor, base: float, offset: int = 0) -> Tensor:
    """Rotate (B, H, L, d) by position, pairing dimension i with i + d/2 (the GPT-NeoX layout).

    The dot product of a rotated query at position m and key at n depends only on m - n;
    `offset` shifts every position, which is how the tests check that.
    """
    length, head_dim = x.shape[-2], x.shape[-1]
    needed = offset + length
    capacity = max(64, 1 << (needed - 1).bit_length())  # few table sizes, so few cache entries
    cos, sin = rope_tables(capacity, head_dim, base, x.device, x.dtype)
    cos, sin = cos[offset:needed], sin[offset:needed]  # (L, d)
    first, second = x.chunk(2, dim=-1)
    rotated_half = torch.cat([-second, first], dim=-1)
    return x * cos + rotated_half * sin


def alibi_slopes(num_heads: int) -> Tensor:
    """The per-head slopes of ALiBi (Press et al. 2022): 2^(-8/n), 2^(-16/n), ... for n heads.

    For a head count that is not a power of two the paper takes the slopes of the nearest lower
    power of two, then every other slope of the next power of two.
    """
    closest = 2 ** math.floor(math.log2(num_heads))
    slopes = _geometric_slopes(closest)
    if closest < num_heads:
        slopes += _geometric_slopes(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes, dtype=torch.float64)


def _geometric_slopes(n: int) -> list[float]:
    start = 2.0 ** (-8.0 / n)
    return [start ** (i + 1) for i in range(n)]


def alibi_bias(
    num_heads: int, length: int, source_length: int, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """(H, L, S) bias -slope · |i - j|: the farther the key, the lower its score."""
    distance = (
        torch.arange(length, device=device)[:, None] - torch.arange(source_length, device=device)
    ).abs()
    slopes = alibi_slopes(num_heads).to(device=device, dtype=dtype)
    return -slopes[:, None, None] * distance.to(dtype)
