"""The checks on MultiHeadAttention's inputs, before any computation: typed errors that name the
tensor, its shape and the shape expected."""

from __future__ import annotations

import torch
from torch import Tensor

from attention.config import AttentionConfig
from attention.errors import InputError, ShapeError


def check_inputs(
    config: AttentionConfig,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    key_padding_mask: Tensor | None,
    attn_mask: Tensor | None,
) -> None:
    """Shapes and values of a forward call's inputs; every message names the input and both
    shapes (batch-first: query (B, L, E), key (B, S, kdim), value (B, S, vdim))."""
    _expect_width("query", query, config.d_model)
    _expect_width("key", key, config.key_dim)
    _expect_width("value", value, config.value_dim)
    batch, length, _ = query.shape
    source_length = key.shape[1]
    if key.shape[0] != batch or value.shape[:2] != key.shape[:2]:
        raise ShapeError(
            f"query {tuple(query.shape)}, key {tuple(key.shape)} and value "
            f"{tuple(value.shape)} must share the batch size, and key and value the length",
            field="key",
        )
    if key_padding_mask is not None:
        _expect_shape("key_padding_mask", key_padding_mask, [(batch, source_length)])
        _expect_mask_values("key_padding_mask", key_padding_mask)
    if attn_mask is not None:
        allowed = [(length, source_length), (batch * config.num_heads, length, source_length)]
        _expect_shape("attn_mask", attn_mask, allowed)
        _expect_mask_values("attn_mask", attn_mask)


def _expect_width(name: str, x: Tensor, width: int) -> None:
    if x.dim() != 3 or x.shape[-1] != width:
        raise ShapeError(
            f"{name} has shape {tuple(x.shape)}; expected (batch, length, {width})", field=name
        )
    if x.shape[1] == 0:
        raise ShapeError(f"{name} has no positions: length 0", field=name)


def _expect_shape(name: str, x: Tensor, allowed: list[tuple[int, ...]]) -> None:
    if tuple(x.shape) not in allowed:
        expected = " or ".join(str(shape) for shape in allowed)
        raise ShapeError(f"{name} has shape {tuple(x.shape)}; expected {expected}", field=name)


def _expect_mask_values(name: str, mask: Tensor) -> None:
    if mask.dtype == torch.bool:
        return
    if not mask.is_floating_point():
        raise InputError(f"{name} must be boolean or floating point, not {mask.dtype}", field=name)
    if bool((torch.isnan(mask) | torch.isposinf(mask)).any()):
        raise InputError(
            f"{name} holds NaN or +inf; only finite values and -inf are allowed", field=name
        )
