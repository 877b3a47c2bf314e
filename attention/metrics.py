"""Summaries of one sequence's attention, per head: how spread out, how far, and where to."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class HeadMetrics(NamedTuple):
    entropy: Tensor  # (H,) mean over queries of -Σ w log w, in nats
    mean_distance: Tensor  # (H,) mean over queries of Σ_j w_ij |i - j| over the sequence's keys
    top_key: Tensor  # (H, L) the key index each query attends to most; -1 if it sees no key


def head_metrics(weights: Tensor, num_positioned_keys: int, fully_masked: Tensor) -> HeadMetrics:
    """`weights` (H, L, S) of one unpadded sequence, the first `num_positioned_keys` columns
    being keys at positions 0..S-1 (the rest: bias_k, the zero key); `fully_masked` (H, L).

    Queries that could attend to no key are left out of the means.
    """
    length = weights.shape[1]
    visible = (~fully_masked).to(weights.dtype)  # (H, L)
    entropy = -torch.special.xlogy(weights, weights).sum(dim=-1)  # (H, L); 0 · log 0 = 0
    positions = torch.arange(length, device=weights.device, dtype=weights.dtype)
    keys = torch.arange(num_positioned_keys, device=weights.device, dtype=weights.dtype)
    distance = (positions[:, None] - keys[None, :]).abs()  # (L, S_positioned)
    travelled = (weights[..., :num_positioned_keys] * distance).sum(dim=-1)  # (H, L)
    return HeadMetrics(
        entropy=_masked_mean(entropy, visible),
        mean_distance=_masked_mean(travelled, visible),
        top_key=weights.argmax(dim=-1).masked_fill(fully_masked, -1),
    )


def _masked_mean(values: Tensor, visible: Tensor) -> Tensor:
    count = visible.sum(dim=-1)
    total = (values * visible).sum(dim=-1)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))
