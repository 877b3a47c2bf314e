"""Sentence embeddings: the mean of the last hidden state over real tokens, L2-normalised.

This is sentence-transformers' ``Pooling(mean) -> Normalize`` for all-MiniLM-L6-v2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from attention.bert.model import BertModel
from attention.bert.tokenizer import WordPieceTokenizer


def mean_pool(hidden: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
    """(B, L, E) -> (B, E): the mean over each sequence's real tokens (mask True = padding)."""
    if key_padding_mask is None:
        return hidden.mean(dim=1)
    real = (~key_padding_mask).to(hidden.dtype)[..., None]  # (B, L, 1)
    counts = real.sum(dim=1).clamp(min=1.0)  # (B, 1)
    return (hidden * real).sum(dim=1) / counts


def sentence_embeddings(hidden: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
    """(B, L, E) -> (B, E) unit vectors: mean pooling, then L2 normalisation."""
    return F.normalize(mean_pool(hidden, key_padding_mask), p=2.0, dim=-1)


@torch.inference_mode()
def embed_texts(
    model: BertModel, tokenizer: WordPieceTokenizer, texts: Sequence[str], *, truncate: bool = False
) -> Tensor:
    """(B, E) unit sentence embeddings of `texts`, on the model's device."""
    device = next(model.parameters()).device
    batch = tokenizer.encode(texts, truncate=truncate).to(device)
    output = model(
        batch.input_ids, key_padding_mask=batch.key_padding_mask, output_attentions=False
    )
    return sentence_embeddings(output.last_hidden_state, batch.key_padding_mask)
