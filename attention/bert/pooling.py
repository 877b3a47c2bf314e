"""Sentence embeddings as the folder's sentence-transformers modules say: the pooling of
``1_Pooling/config.json`` (CLS token, mean, max or last token) over the last hidden state, then
L2 normalisation when ``modules.json`` lists a Normalize module.

A folder without modules.json keeps this service's historical default, the mean, normalised
(what all-MiniLM-L6-v2's modules say too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from attention.bert.model import BertModel
from attention.bert.tokenizer import WordPieceTokenizer

PoolingMode = Literal["cls", "mean", "max", "lasttoken"]
POOLING_MODES: dict[str, PoolingMode] = {
    "cls": "cls", "mean": "mean", "max": "max", "lasttoken": "lasttoken",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_lasttoken": "lasttoken",
}  # fmt: skip
"""1_Pooling/config.json's names (`pooling_mode`, or the older `pooling_mode_*` switches) of the
modes supported, and the mode each stands for."""


@dataclass(frozen=True)
class Pooling:
    mode: PoolingMode = "mean"
    normalize: bool = True


MEAN_NORMALIZED = Pooling("mean", normalize=True)


def mean_pool(hidden: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
    """(B, L, E) -> (B, E): the mean over each sequence's real tokens (mask True = padding)."""
    if key_padding_mask is None:
        return hidden.mean(dim=1)
    real = (~key_padding_mask).to(hidden.dtype)[..., None]  # (B, L, 1)
    counts = real.sum(dim=1).clamp(min=1.0)  # (B, 1)
    return (hidden * real).sum(dim=1) / counts


def pool(hidden: Tensor, key_padding_mask: Tensor | None, mode: PoolingMode) -> Tensor:
    """(B, L, E) -> (B, E) by `mode`, over each sequence's real tokens (right-padded)."""
    if mode == "mean":
        return mean_pool(hidden, key_padding_mask)
    if mode == "cls":
        return hidden[:, 0]
    if key_padding_mask is None:
        return hidden.max(dim=1).values if mode == "max" else hidden[:, -1]
    if mode == "max":
        return hidden.masked_fill(key_padding_mask[..., None], float("-inf")).max(dim=1).values
    last = (~key_padding_mask).sum(dim=1) - 1  # (B,) the last real position
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def sentence_embeddings(
    hidden: Tensor, key_padding_mask: Tensor | None = None, pooling: Pooling = MEAN_NORMALIZED
) -> Tensor:
    """(B, L, E) -> (B, E): pooled, then L2-normalised when `pooling.normalize`."""
    pooled = pool(hidden, key_padding_mask, pooling.mode)
    return F.normalize(pooled, p=2.0, dim=-1) if pooling.normalize else pooled


@torch.inference_mode()
def embed_texts(
    model: BertModel,
    tokenizer: WordPieceTokenizer,
    texts: Sequence[str],
    *,
    truncate: bool = False,
    pooling: Pooling = MEAN_NORMALIZED,
) -> Tensor:
    """(B, E) sentence embeddings of `texts`, on the model's device."""
    device = next(model.parameters()).device
    batch = tokenizer.encode(texts, truncate=truncate).to(device)
    output = model(
        batch.input_ids, key_padding_mask=batch.key_padding_mask, output_attentions=False
    )
    return sentence_embeddings(output.last_hidden_state, batch.key_padding_mask, pooling)
