"""Deterministic token embeddings.

A string token's vector is a function of the token, the width and the seed alone: it is drawn
from SHAKE-256 of (seed, token) through Box-Muller, so "sword" has the same vector in every
request, process, machine and PyTorch version. Integer ids index a table drawn once from the seed.
"""

from __future__ import annotations

import hashlib
import math
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from attention.errors import InputError

Token = str | int

_UNIT = 2.0**-32  # maps a uint32 into [0, 1)


def hashed_vector(token: str, dim: int, seed: int) -> Tensor:
    """A standard-normal float64 vector of length `dim` that depends on (token, dim, seed) only."""
    pairs = (dim + 1) // 2
    digest = hashlib.shake_256(f"{seed}\x00{dim}\x00{token}".encode()).digest(8 * pairs)
    # read as little-endian uint32 explicitly, so that big-endian machines draw the same vector
    words = torch.tensor(struct.unpack(f"<{2 * pairs}I", digest), dtype=torch.float64)
    uniform = (words + 0.5) * _UNIT  # (2·pairs,) strictly inside (0, 1)
    radius = torch.sqrt(-2.0 * torch.log(uniform[0::2]))
    angle = 2.0 * math.pi * uniform[1::2]
    normal = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)
    return normal.reshape(-1)[:dim]


class TokenEmbedding(nn.Module):
    """Maps string tokens (hashed) and integer ids (seeded table) to d_model-wide vectors."""

    def __init__(
        self,
        d_model: int,
        vocab_size: int,
        seed: int,
        generator: torch.Generator,
        cache_size: int = 65536,
    ) -> None:
        super().__init__()
        self.d_model, self.seed, self.cache_size = d_model, seed, cache_size
        self.ids = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.ids.weight, generator=generator)
        self._string_cache: OrderedDict[str, Tensor] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def vocab_size(self) -> int:
        return self.ids.num_embeddings

    def forward(self, sequences: Sequence[Sequence[Token]]) -> Tensor:
        """(B, L_max, d_model), padded with zero vectors after each shorter sequence."""
        weight = self.ids.weight
        longest = max((len(sequence) for sequence in sequences), default=0)
        out = torch.zeros(len(sequences), longest, self.d_model, dtype=weight.dtype)
        for row, sequence in enumerate(sequences):
            if sequence:
                out[row, : len(sequence)] = self._embed_sequence(sequence, row)
        return out.to(weight.device)

    def _embed_sequence(self, sequence: Sequence[Token], row: int) -> Tensor:
        if all(isinstance(token, str) for token in sequence):
            vectors = [self._string_vector(str(token)) for token in sequence]
            return torch.stack(vectors).to(self.ids.weight.dtype)
        if all(isinstance(token, int) and not isinstance(token, bool) for token in sequence):
            return self._id_vectors([int(token) for token in sequence], row)
        raise InputError(
            f"sequence {row} mixes strings and integer ids; use one kind per sequence",
            field=f"sequences.{row}",
        )

    def _id_vectors(self, ids: list[int], row: int) -> Tensor:
        for position, token_id in enumerate(ids):
            if not 0 <= token_id < self.vocab_size:
                raise InputError(
                    f"token id {token_id} at position {position} of sequence {row} is outside "
                    f"[0, vocab_size={self.vocab_size})",
                    field=f"sequences.{row}.{position}",
                )
        weight = self.ids.weight.detach()
        return weight[torch.tensor(ids, device=weight.device)].cpu()

    def _string_vector(self, token: str) -> Tensor:
        # one model serves the service's worker threads at once: the LRU's moves need a lock
        with self._cache_lock:
            cached = self._string_cache.get(token)
            if cached is not None:
                self._string_cache.move_to_end(token)
                return cached
        vector = hashed_vector(token, self.d_model, self.seed)
        with self._cache_lock:
            self._string_cache[token] = vector
            if len(self._string_cache) > self.cache_size:
                self._string_cache.popitem(last=False)
        return vector
