"""Deterministic token embeddings.

A string token's vector is a function of the token, the width and the seed alone: it is drawn
from SHAKE-256 of (seed, token) through Box-Muller, so "sword" has the same vector in every
request, process, machine and PyTorch version. Integer ids index a table drawn once from the seed.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from attention.errors import InputError
from attention.interrupt import checkpoint

Token = str | int

_UNIT = 2.0**-32  # maps a uint32 into [0, 1)
# a tensor's Python object, the key tuple, the token and the LRU's link: 377 bytes an entry with
# tracemalloc on 2-number vectors, plus the storage's own allocation
ENTRY_OVERHEAD_BYTES = 400
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024


def hashed_vector(token: str, dim: int, seed: int) -> Tensor:
    """A standard-normal float64 vector of length `dim` that depends on (token, dim, seed) only."""
    pairs = (dim + 1) // 2
    digest = hashlib.shake_256(f"{seed}\x00{dim}\x00{token}".encode()).digest(8 * pairs)
    # read as little-endian uint32 explicitly, so that big-endian machines draw the same vector
    octets = torch.frombuffer(bytearray(digest), dtype=torch.uint8).view(-1, 4).to(torch.int64)
    words = (octets[:, 0] | octets[:, 1] << 8 | octets[:, 2] << 16 | octets[:, 3] << 24).double()
    uniform = (words + 0.5) * _UNIT  # (2·pairs,) strictly inside (0, 1)
    radius = torch.sqrt(-2.0 * torch.log(uniform[0::2]))
    angle = 2.0 * math.pi * uniform[1::2]
    normal = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)
    return normal.reshape(-1)[:dim]


def token_vector_bytes(token: str, dim: int) -> int:
    """What one cached vector holds: its float64 numbers, its key and the objects around them."""
    return 8 * dim + len(token.encode()) + ENTRY_OVERHEAD_BYTES


class TokenVectorCache:
    """Hashed token vectors of every model in the process, least recently used evicted, bounded
    in bytes: the vectors depend on (seed, width, token) only, so models share one cache."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._vectors: OrderedDict[tuple[int, int, str], Tensor] = OrderedDict()
        self._lock = threading.Lock()  # the service's worker threads share it

    def __len__(self) -> int:
        return len(self._vectors)

    def __contains__(self, key: tuple[int, int, str]) -> bool:
        return key in self._vectors

    def vector(self, token: str, dim: int, seed: int) -> Tensor:
        key = (seed, dim, token)
        with self._lock:
            cached = self._vectors.get(key)
            if cached is not None:
                self._vectors.move_to_end(key)
                return cached
        checkpoint()  # hashing is the slow part of a long sequence of new tokens
        vector = hashed_vector(token, dim, seed)
        self._store(key, vector)
        return vector

    def _store(self, key: tuple[int, int, str], vector: Tensor) -> None:
        size = token_vector_bytes(key[2], key[1])
        if size > self.max_bytes:
            return  # one vector over the whole budget: computed, never kept
        with self._lock:
            if key in self._vectors:
                return
            self._vectors[key] = vector
            self.bytes += size
            while self.bytes > self.max_bytes:
                (_, dim, token), _ = self._vectors.popitem(last=False)
                self.bytes -= token_vector_bytes(token, dim)


class TokenEmbedding(nn.Module):
    """Maps string tokens (hashed) and integer ids (seeded table) to d_model-wide vectors."""

    def __init__(
        self,
        d_model: int,
        vocab_size: int,
        seed: int,
        generator: torch.Generator,
        cache: TokenVectorCache | None = None,
    ) -> None:
        super().__init__()
        self.d_model, self.seed = d_model, seed
        self.ids = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.ids.weight, generator=generator)
        self.cache = TokenVectorCache() if cache is None else cache

    @property
    def vocab_size(self) -> int:
        return self.ids.num_embeddings

    def forward(self, sequences: Sequence[Sequence[Token]], field: str = "sequences") -> Tensor:
        """(B, L_max, d_model), padded with zero vectors after each shorter sequence; errors
        name `field`, the request's name for these sequences."""
        weight = self.ids.weight
        longest = max((len(sequence) for sequence in sequences), default=0)
        out = torch.zeros(len(sequences), longest, self.d_model, dtype=weight.dtype)
        for row, sequence in enumerate(sequences):
            if sequence:
                out[row, : len(sequence)] = self._embed_sequence(sequence, f"{field}.{row}")
        return out.to(weight.device)

    def _embed_sequence(self, sequence: Sequence[Token], field: str) -> Tensor:
        if all(isinstance(token, str) for token in sequence):
            vectors = [self.cache.vector(str(token), self.d_model, self.seed) for token in sequence]
            return torch.stack(vectors).to(self.ids.weight.dtype)
        if all(isinstance(token, int) and not isinstance(token, bool) for token in sequence):
            return self._id_vectors([int(token) for token in sequence], field)
        raise InputError(
            f"{field} mixes strings and integer ids; use one kind per sequence", field=field
        )

    def _id_vectors(self, ids: list[int], field: str) -> Tensor:
        for position, token_id in enumerate(ids):
            if not 0 <= token_id < self.vocab_size:
                raise InputError(
                    f"token id {token_id} at {field}.{position} is outside "
                    f"[0, vocab_size={self.vocab_size})",
                    field=f"{field}.{position}",
                )
        weight = self.ids.weight.detach()
        return weight[torch.tensor(ids, device=weight.device)].cpu()
