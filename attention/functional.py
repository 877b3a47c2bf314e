"""The attention math as plain functions, one per step of the pipeline.

Shapes use B = batch, H = query heads, H_kv = key/value heads, L = queries, S = keys,
d = head_dim. Masks follow ``torch.nn.MultiheadAttention``: ``True`` means "may not attend".
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, L, H·d) -> (B, H, L, d)."""
    batch, length, width = x.shape
    return x.view(batch, length, num_heads, width // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, L, d) -> (B, L, H·d): the concatenation of the heads."""
    batch, heads, length, dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * dim)


def expand_kv_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, H_kv, S, d) -> (B, H, S, d): query head h reads K/V head h // (H / H_kv)."""
    group = num_heads // x.shape[1]
    return x if group == 1 else x.repeat_interleave(group, dim=1)


def head_matmul(a: Tensor, b: Tensor) -> Tensor:
    """a @ b per head: (B, H, m, k) × (B, H, k, n) -> (B, H, m, n), as one batched product.

    The same products as `a @ b`, without matmul's broadcasting (expand, reshape): on small
    inputs that bookkeeping costs as much as the arithmetic.
    """
    batch, heads, rows, _ = a.shape
    columns = b.shape[-1]
    flat = torch.bmm(a.reshape(batch * heads, rows, -1), b.reshape(batch * heads, -1, columns))
    return flat.view(batch, heads, rows, columns)


def attention_scores(q: Tensor, k: Tensor) -> Tensor:
    """Q×Kᵀ per head: (B, H, L, d) × (B, H_kv, S, d) -> (B, H, L, S)."""
    return head_matmul(q, expand_kv_heads(k, q.shape[1]).transpose(-2, -1))


def scale_scores(scores: Tensor, scale: float) -> Tensor:
    """Multiply by 1/√d_k (or an explicit scale) so that the softmax does not saturate."""
    return scores * scale


def causal_mask(length: int, source_length: int, device: torch.device) -> Tensor:
    """(L, S) bool, True above the diagonal: query i sees keys 0..i (top-left aligned)."""
    return torch.ones(length, source_length, dtype=torch.bool, device=device).triu(1)


def window_mask(length: int, source_length: int, window: int, device: torch.device) -> Tensor:
    """(L, S) bool, True where the key is `window` or more positions away from the query."""
    queries = torch.arange(length, device=device)[:, None]
    keys = torch.arange(source_length, device=device)[None, :]
    return (queries - keys).abs() >= window


def mask_to_bias(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A boolean mask becomes an additive bias of -inf; a float mask is already one."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf")
        )
    return mask.to(dtype)


def apply_bias(scaled_scores: Tensor, bias: Tensor | None) -> Tensor:
    """Add masks and positional biases (ALiBi) to the scaled scores."""
    return scaled_scores if bias is None else scaled_scores + bias


class Softmax(NamedTuple):
    weights: Tensor  # (B, H, L, S), zeros in rows with no visible key
    fully_masked: Tensor  # (B, H, L) bool: the query had no key it could attend to


def masked_softmax(masked_scores: Tensor) -> Softmax:
    """Softmax over keys; a query whose keys are all masked gets zeros instead of NaN."""
    fully_masked = torch.isneginf(masked_scores).all(dim=-1)
    rows = fully_masked[..., None]
    if not masked_scores.requires_grad:
        # a fully masked row comes out of softmax as NaN and is zeroed in place: one copy fewer
        return Softmax(torch.softmax(masked_scores, dim=-1).masked_fill_(rows, 0.0), fully_masked)
    # with gradients, the row is made finite first so that no NaN flows back
    safe = masked_scores.masked_fill(rows, 0.0)
    weights = torch.softmax(safe, dim=-1).masked_fill(rows, 0.0)
    return Softmax(weights, fully_masked)


def weighted_sum(weights: Tensor, v: Tensor) -> Tensor:
    """Each head's weighted sum of values: (B, H, L, S) × (B, H_kv, S, d) -> (B, H, L, d)."""
    return head_matmul(weights, expand_kv_heads(v, weights.shape[1]))


class Attention(NamedTuple):
    output: Tensor  # (B, H, L, d)
    weights: Tensor  # (B, H, L, S)


def scaled_dot_product_attention(
    q: Tensor, k: Tensor, v: Tensor, *, scale: float, bias: Tensor | None = None
) -> Attention:
    """The whole of steps 4-7 in one call, returning both the head outputs and the weights."""
    masked = apply_bias(scale_scores(attention_scores(q, k), scale), bias)
    weights = masked_softmax(masked).weights
    return Attention(weighted_sum(weights, v), weights)


def fast_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    scale: float,
    bias: Tensor | None,
    dropout: float = 0.0,
    is_causal: bool = False,
) -> Tensor:
    """Head outputs only, through PyTorch's fused kernels; fully masked queries give zeros."""
    heads = q.shape[1]
    output = F.scaled_dot_product_attention(
        q,
        expand_kv_heads(k, heads),
        expand_kv_heads(v, heads),
        attn_mask=bias,
        dropout_p=dropout,
        is_causal=is_causal,
        scale=scale,
    )
    if bias is None:
        return output
    fully_masked = torch.isneginf(bias).all(dim=-1, keepdim=True)
    return output.masked_fill(fully_masked, 0.0)
