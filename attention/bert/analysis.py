"""Reading a trained model's attention: rollout, entropy, special-token shares, words.

Every function takes one sequence's unpadded attention, as ``BertOutput.sequence_attentions``
gives it: N layers × H heads × n queries × n keys, rows summing to 1. Padding never enters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from attention.errors import InputError, ShapeError


def rollout_by_layer(attentions: Tensor, *, residual: bool = True) -> Tensor:
    """Attention rollout after each layer (Abnar & Zuidema 2020): (N, H, n, n) -> (N, n, n).

    Per layer the heads are averaged; with `residual` the identity is added for the skip
    connection and rows are renormalised, ``Â = (A + I) / 2``. Layer l's rollout is
    ``Â_l · … · Â_1``: how much each query position draws on each input token.
    """
    _check_attentions(attentions)
    mixed = attentions.mean(dim=1)  # (N, n, n)
    if residual:
        eye = torch.eye(mixed.shape[-1], dtype=mixed.dtype, device=mixed.device)
        mixed = mixed + eye
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
    layers = [mixed[0]]
    for layer in mixed[1:]:
        layers.append(layer @ layers[-1])  # (n, n)
    return torch.stack(layers)


def attention_rollout(attentions: Tensor, *, residual: bool = True) -> Tensor:
    """The rollout through all layers: (N, H, n, n) -> (n, n), rows summing to 1."""
    return rollout_by_layer(attentions, residual=residual)[-1]


def row_entropy(weights: Tensor) -> Tensor:
    """Entropy in nats of each attention row: (..., n) -> (...); log(n) when uniform."""
    terms: Tensor = torch.special.xlogy(weights, weights)  # 0 · log 0 = 0
    return -terms.sum(dim=-1)


def head_entropy(attentions: Tensor) -> Tensor:
    """Mean row entropy of each head: (N, H, n, n) -> (N, H). Low = focused, log(n) = flat."""
    _check_attentions(attentions)
    return row_entropy(attentions).mean(dim=-1)


def attention_share(attentions: Tensor, key_positions: Sequence[int]) -> Tensor:
    """Mean over queries of the weight on `key_positions`: (N, H, n, n) -> (N, H) in [0, 1]."""
    _check_attentions(attentions)
    length = attentions.shape[-1]
    if any(not 0 <= position < length for position in key_positions):
        raise InputError(
            f"key positions {list(key_positions)} outside 0..{length - 1}", field="key_positions"
        )
    columns = torch.tensor(sorted(set(key_positions)), dtype=torch.int64, device=attentions.device)
    return attentions.index_select(-1, columns).sum(dim=-1).mean(dim=-1)


def special_token_shares(
    attentions: Tensor, tokens: Sequence[str], specials: Sequence[str] = ("[CLS]", "[SEP]")
) -> dict[str, Tensor]:
    """`attention_share` on each special token: {"[CLS]": (N, H), "[SEP]": (N, H)}."""
    _check_tokens(attentions, tokens)
    return {
        special: attention_share(
            attentions, [i for i, token in enumerate(tokens) if token == special]
        )
        for special in specials
    }


def offset_argmax_share(attentions: Tensor, offset: int = -1) -> Tensor:
    """Share of queries whose strongest key is `offset` positions away: (N, H, n, n) -> (N, H).

    Only queries with a key at that offset count; ``offset=-1`` finds previous-token heads.
    """
    _check_attentions(attentions)
    length = attentions.shape[-1]
    queries = torch.arange(max(0, -offset), min(length, length - offset), device=attentions.device)
    if queries.numel() == 0:
        raise InputError(
            f"no query has a key at offset {offset} in {length} tokens", field="offset"
        )
    strongest = attentions[..., queries, :].argmax(dim=-1)  # (N, H, q)
    return (strongest == queries + offset).to(attentions.dtype).mean(dim=-1)


def aggregate_words(attention: Tensor, groups: Sequence[Sequence[int]]) -> Tensor:
    """Token-level attention (..., n, n) -> word-level (..., G, G).

    Attention *to* a word is the sum over its pieces (it is a share of the row), attention
    *from* a word the mean over its pieces' rows, so rows still sum to 1 when the groups
    partition the tokens (``tokenizer.word_groups`` gives such groups).
    """
    if attention.dim() < 2 or attention.shape[-1] != attention.shape[-2]:
        raise ShapeError(
            f"attention has shape {tuple(attention.shape)}; expected (..., n, n)", field="attention"
        )
    membership = _membership(groups, attention.shape[-1], attention)  # (G, n)
    to_words = attention @ membership.T  # (..., n, G)
    from_words = membership / membership.sum(dim=-1, keepdim=True)  # (G, n), rows averaging
    return from_words @ to_words  # (..., G, G)


def _membership(groups: Sequence[Sequence[int]], length: int, like: Tensor) -> Tensor:
    """(G, n) 0/1 matrix: row g marks the tokens of group g."""
    flat = [position for group in groups for position in group]
    if not groups or any(not group for group in groups):
        raise InputError("word groups must be a non-empty list of non-empty groups", field="groups")
    if len(set(flat)) != len(flat) or any(not 0 <= position < length for position in flat):
        raise InputError(
            f"word groups must be disjoint positions in 0..{length - 1}", field="groups"
        )
    membership = like.new_zeros(len(groups), length)
    for row, group in enumerate(groups):
        membership[row, list(group)] = 1.0
    return membership


def _check_attentions(attentions: Tensor) -> None:
    if attentions.dim() != 4 or attentions.shape[-1] != attentions.shape[-2]:
        raise ShapeError(
            f"attentions has shape {tuple(attentions.shape)}; expected (layers, heads, n, n)",
            field="attentions",
        )


def _check_tokens(attentions: Tensor, tokens: Sequence[str]) -> None:
    if len(tokens) != attentions.shape[-1]:
        raise ShapeError(
            f"{len(tokens)} tokens for attention over {attentions.shape[-1]} positions",
            field="tokens",
        )
