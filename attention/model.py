"""AttentionModel: token embedding and positional encoding in front of MultiHeadAttention.

This is the whole pipeline of the lecture: steps 1 (embedding + position) through 9 (output
projection), with the trace naming each step as ``steps`` does in the service's responses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from attention.config import AttentionConfig
from attention.embedding import Token, TokenEmbedding, TokenVectorCache
from attention.multi_head import AttentionOutput, MultiHeadAttention, WeightsSink
from attention.positional import LearnedPositions, SinusoidalPositions


def component_generator(seed: int, component: str) -> torch.Generator:
    """A private generator per component, so adding one never shifts another's numbers."""
    digest = hashlib.blake2b(f"{seed}:{component}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


class Embedded(NamedTuple):
    token_embeddings: Tensor  # (B, L, d_model)
    positional: Tensor  # (L, d_model); zeros for encodings that act inside attention
    inputs: Tensor  # (B, L, d_model): the embedded position layer, their sum


class AttentionModel(nn.Module):
    """Seeded token embeddings, a positional encoding and one multi-head attention layer."""

    def __init__(
        self, config: AttentionConfig, token_cache: TokenVectorCache | None = None
    ) -> None:
        """`token_cache` keeps hashed string-token vectors; models may share one."""
        super().__init__()
        self.config = config
        self.attention = MultiHeadAttention(config, component_generator(config.seed, "attention"))
        self.tokens = TokenEmbedding(
            config.d_model,
            config.vocab_size,
            config.seed,
            component_generator(config.seed, "tokens"),
            token_cache,
        )
        self.positions: SinusoidalPositions | LearnedPositions | None = None
        if config.positional_encoding == "sinusoidal":
            self.positions = SinusoidalPositions(config.d_model)
        elif config.positional_encoding == "learned":
            generator = component_generator(config.seed, "positions")
            self.positions = LearnedPositions(config.max_positions, config.d_model, generator)

    def embed_tokens(
        self, sequences: Sequence[Sequence[Token]], field: str = "sequences"
    ) -> Tensor:
        """Step 1a, token embedding: (B, L_max, d_model), zero vectors after shorter sequences;
        errors name `field`, the caller's name for the sequences."""
        embeddings: Tensor = self.tokens(sequences, field)
        return embeddings

    def positional(self, length: int, like: Tensor) -> Tensor:
        """Step 1b, the additive positional encoding for `length` positions: (L, d_model)."""
        if self.positions is None:
            return like.new_zeros(length, self.config.d_model)
        table: Tensor = self.positions(length)
        return table.to(device=like.device, dtype=like.dtype)

    def embed(self, token_embeddings: Tensor) -> Embedded:
        """Step 1c, the embedded position layer: token embeddings plus positions."""
        positional = self.positional(token_embeddings.shape[1], token_embeddings)
        return Embedded(token_embeddings, positional, token_embeddings + positional)

    def forward(
        self,
        token_embeddings: Tensor,
        key_embeddings: Tensor | None = None,
        value_embeddings: Tensor | None = None,
        *,
        position_keys: bool = False,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        need_weights: bool = True,
        trace: bool = False,
        attention: MultiHeadAttention | None = None,
        weights_sink: WeightsSink | None = None,
    ) -> AttentionOutput:
        """Self-attention over `token_embeddings` (B, L, d_model), or cross-attention to keys.

        `position_keys` adds the positional encoding to `key_embeddings` too (keys that were
        tokens); keys given as raw vectors are used as they are. `attention` runs another layer
        of the same configuration (a caller's own weights) over this model's embeddings.
        """
        embedded = self.embed(token_embeddings)
        keys = key_embeddings
        if keys is not None and position_keys:
            keys = self.embed(keys).inputs
        values = keys if value_embeddings is None else value_embeddings
        layer = self.attention if attention is None else attention
        result: AttentionOutput = layer(
            embedded.inputs, keys, values,
            key_padding_mask=key_padding_mask, attn_mask=attn_mask,
            need_weights=need_weights, trace=trace, weights_sink=weights_sink,
        )  # fmt: skip
        if trace:
            # every step of the trace is batched: the one positional table serves each sequence
            batched = embedded._replace(positional=embedded.positional.expand_as(embedded.inputs))
            result.trace = {**batched._asdict(), **result.trace}
        return result
