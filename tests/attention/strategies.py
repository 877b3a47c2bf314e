"""Hypothesis strategies for attention configurations and inputs, shared by the test files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from hypothesis import strategies as st
from torch import Tensor

import attention.functional as AF
from attention import AttentionConfig, AttentionOutput, MultiHeadAttention, PositionalEncoding
from tests.attention.helpers import Inputs, as_float_mask, inputs, random_bool_mask

MaskKind = Literal["bool", "float"]
AttnMaskLayout = Literal["none", "2d", "3d", "causal"]


@dataclass
class Case:
    """One configuration and one input: sizes, masks and the seed the numbers are drawn from."""

    config: AttentionConfig
    dtype: torch.dtype
    batch: int
    length: int
    source_length: int
    self_attention: bool
    key_padding_mask: Tensor | None
    attn_mask: Tensor | None
    seed: int

    def inputs(self) -> Inputs:
        return inputs(
            self.config, self.batch, self.length, self.source_length,
            dtype=self.dtype, seed=self.seed, self_attention=self.self_attention,
        )  # fmt: skip

    def run(
        self, layer: MultiHeadAttention, *, need_weights: bool = True, trace: bool = False
    ) -> AttentionOutput:
        """`layer` on this case's inputs and masks."""
        x = self.inputs()
        result: AttentionOutput = layer(
            x.query, x.key, x.value,
            key_padding_mask=self.key_padding_mask, attn_mask=self.attn_mask,
            need_weights=need_weights, trace=trace,
        )  # fmt: skip
        return result


def _mask(
    shape: tuple[int, ...], kind: MaskKind, dtype: torch.dtype, seed: int, *, blocked: float
) -> Tensor:
    """A boolean mask, or a float one with random finite values and -inf where blocked."""
    mask = random_bool_mask(shape, blocked, seed)
    if kind == "bool":
        return mask
    values = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1), dtype=dtype)
    return values + as_float_mask(mask, dtype)


def _attn_mask(
    layout: AttnMaskLayout,
    kind: MaskKind,
    sizes: tuple[int, int, int, int],
    dtype: torch.dtype,
    seed: int,
) -> Tensor | None:
    batch, heads, length, source_length = sizes
    if layout == "none":
        return None
    if layout == "causal":
        causal = AF.causal_mask(length, source_length, torch.device("cpu"))
        return causal if kind == "bool" else as_float_mask(causal, dtype)
    shape = (length, source_length) if layout == "2d" else (batch * heads, length, source_length)
    return _mask(shape, kind, dtype, seed, blocked=0.3)


def _draw_masks(
    draw: st.DrawFn,
    sizes: tuple[int, int, int, int],
    dtype: torch.dtype,
    layouts: list[AttnMaskLayout],
) -> tuple[Tensor | None, Tensor | None]:
    """(key_padding_mask, attn_mask), both boolean or both float: PyTorch warns on a mix."""
    batch, _, _, source_length = sizes
    kind: MaskKind = draw(st.sampled_from(["bool", "float"]))
    seed = draw(st.integers(0, 2**16))
    padding = None
    if draw(st.booleans()):
        padding = _mask((batch, source_length), kind, dtype, seed, blocked=0.4)
    return padding, _attn_mask(draw(st.sampled_from(layouts)), kind, sizes, dtype, seed + 2)


@st.composite
def pytorch_cases(draw: st.DrawFn, *, grouped: bool = False) -> Case:
    """Configurations nn.MultiheadAttention also has; `grouped` adds num_kv_heads < num_heads."""
    num_heads = draw(st.sampled_from([1, 2, 4]))
    kv_choices = [h for h in (1, 2, 4) if num_heads % h == 0]
    config = AttentionConfig(
        d_model=num_heads * draw(st.integers(1, 4)),
        num_heads=num_heads,
        num_kv_heads=draw(st.sampled_from(kv_choices)) if grouped else None,
        kdim=draw(st.none() | st.integers(1, 6)),
        vdim=draw(st.none() | st.integers(1, 6)),
        bias=draw(st.booleans()),
        add_bias_kv=draw(st.booleans()),
        add_zero_attn=draw(st.booleans()),
        positional_encoding="none",
    )
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    batch, length = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    self_attention = config.packed_projection and draw(st.booleans())
    source_length = length if self_attention else draw(st.integers(1, 5))
    sizes = (batch, num_heads, length, source_length)
    padding, attn_mask = _draw_masks(draw, sizes, dtype, ["none", "2d", "3d", "causal"])
    seed = draw(st.integers(0, 2**16))
    return Case(
        config, dtype, batch, length, source_length, self_attention, padding, attn_mask, seed
    )


@st.composite
def fast_path_cases(draw: st.DrawFn) -> Case:
    """Every feature of the module, PyTorch's or not: causal, window, RoPE, ALiBi, GQA, scale."""
    encoding: PositionalEncoding = draw(st.sampled_from(["none", "rope", "alibi"]))
    num_heads = draw(st.sampled_from([1, 2, 3, 4]))
    head_dim = draw(st.sampled_from([2, 4] if encoding == "rope" else [1, 2, 3, 4]))
    positioned = encoding != "none"  # the extra keys have no position: refused with these
    config = AttentionConfig(
        d_model=num_heads * head_dim,
        num_heads=num_heads,
        num_kv_heads=draw(st.sampled_from([h for h in range(1, 5) if num_heads % h == 0])),
        kdim=draw(st.none() | st.integers(1, 6)),
        vdim=draw(st.none() | st.integers(1, 6)),
        bias=draw(st.booleans()),
        add_bias_kv=False if positioned else draw(st.booleans()),
        add_zero_attn=False if positioned else draw(st.booleans()),
        scale=draw(st.none() | st.floats(0.1, 2.0)),
        causal=draw(st.booleans()),
        window=draw(st.none() | st.integers(1, 4)),
        positional_encoding=encoding,
    )
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    batch, length, source_length = (draw(st.integers(1, 3)) for _ in range(3))
    sizes = (batch, num_heads, length, source_length)
    padding, attn_mask = _draw_masks(draw, sizes, dtype, ["none", "2d", "3d"])
    seed = draw(st.integers(0, 2**16))
    return Case(config, dtype, batch, length, source_length, False, padding, attn_mask, seed)
