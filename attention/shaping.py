"""Attention weights shaped to what a person can look at: chosen heads and queries, each query's
k largest weights, and an overview pooled over blocks of tokens.

A sequence's weights (H, L, S) can be shaped at once (`shape_weights`) or fed block of queries by
block of queries (`WeightsShaper.add`), so that a long input never holds its whole L × S matrix:
the blocks give the same numbers as the whole, because every shaped value depends on its own
query rows only (top-k) or is a max or a sum over rows (pooling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from attention.errors import InputError

# rows of a block of queries: the block's (B, H, rows, S) matrices stay near this many numbers
# (64 MiB in float32): above glibc's largest mmap threshold (32 MiB), so every block's matrices
# are mapped and unmapped whole; smaller blocks left the heap fragmented by the small top-k
# pieces kept between them (6.9 GB resident for 16 MiB blocks at 32k tokens, 0.2 GB for these)
QUERY_BLOCK_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class Shaping:
    """What to keep of one sequence's weights. `heads` and `queries` are indices (None: all);
    `average` averages the kept heads into one; `top_k` and `pool` replace the dense matrix.
    `listed_queries`: `queries` is a list, not a range, so pooled query blocks are bounded by
    indices into it (a block of [1, 3] covers rows 1 and 3, never the position 2 between)."""

    heads: tuple[int, ...] | None = None
    queries: tuple[int, ...] | None = None
    listed_queries: bool = False
    average: bool = False
    top_k: int | None = None
    pool: int | None = None

    @property
    def reduces(self) -> bool:
        """Whether the dense matrix is replaced by top-k pairs or a pooled overview."""
        return self.top_k is not None or self.pool is not None


class TopK(NamedTuple):
    keys: Tensor  # (H, Lq, k) int: key indices, by decreasing weight
    weights: Tensor  # (H, Lq, k)
    mass: Tensor  # (H, Lq): the share of the query's attention the k weights cover


class Pooled(NamedTuple):
    max: Tensor  # (H, Nq, Nk): the largest weight of each block
    mean: Tensor  # (H, Nq, Nk): the mean weight of each block
    query_bounds: list[int]  # Nq + 1 query positions: block i is [bounds[i], bounds[i + 1])
    key_bounds: list[int]  # Nk + 1 key positions


class Shaped(NamedTuple):
    dense: Tensor | None  # (H, Lq, S), when neither top_k nor pool is asked for
    top_k: TopK | None
    pooled: Pooled | None


def block_bounds(length: int, cells: int, start: int = 0) -> list[int]:
    """At most `cells` blocks over positions start..start+length, none empty, sizes within 1."""
    blocks = max(1, min(cells, length))
    return [start + (index * length) // blocks for index in range(blocks + 1)]


def query_block_rows(batch: int, heads: int, keys: int) -> int:
    """Rows of a block of queries whose (B, H, rows, S) matrix holds ~QUERY_BLOCK_ELEMENTS."""
    return max(1, QUERY_BLOCK_ELEMENTS // max(1, batch * heads * keys))


def check_shaping(shaping: Shaping, heads: int, length: int) -> None:
    """Indices within the sequence's heads and queries: an InputError names the field."""
    for field, chosen, count in (("heads", shaping.heads, heads), ("queries", shaping.queries,
                                                                     length)):  # fmt: skip
        for index in chosen or ():
            if not 0 <= index < count:
                raise InputError(
                    f"output.{field} has {index}, but there are {count} {field} (0..{count - 1})",
                    field=f"output.{field}",
                )


class WeightsShaper:
    """Accumulates one sequence's shaped weights from blocks of its query rows."""

    def __init__(self, shaping: Shaping, heads: int, length: int, keys: int) -> None:
        check_shaping(shaping, heads, length)
        self.shaping = shaping
        self.num_heads = heads
        self.keys = keys
        self.heads = torch.tensor(shaping.heads) if shaping.heads is not None else None
        queries = shaping.queries if shaping.queries is not None else range(length)
        self.positions = torch.tensor(list(queries), dtype=torch.long)  # the kept query rows
        self.dense: list[Tensor] = []
        self.top: list[TopK] = []
        self.ranks: list[Tensor] = []  # the ranks of the rows added, block after block
        self.pooled: Pooled | None = None
        self.query_bins: Tensor | None = None
        self.key_bins: Tensor | None = None
        if shaping.pool is not None:
            self.query_bounds = block_bounds(len(self.positions), shaping.pool)
            self.key_bounds = block_bounds(keys, shaping.pool)
            self.query_bins = _bins(self.query_bounds)  # a kept row's block, by its rank
            self.key_bins = _bins(self.key_bounds)

    def add(self, block: Tensor, start: int) -> None:
        """`block` (H, rows, S): the weights of queries start..start+rows, keys already cut."""
        stop = start + block.shape[-2]
        ranks = ((self.positions >= start) & (self.positions < stop)).nonzero().flatten()
        if ranks.numel() == 0:
            return
        first, last = int(ranks[0]), int(ranks[-1])
        if last - first == ranks.numel() - 1 and self._contiguous(first, last):
            offset = int(self.positions[first]) - start  # a slice: no copy of the block
            rows = block[:, offset : offset + ranks.numel()]
        else:
            rows = block[:, self.positions[ranks] - start]  # (H, r, S)
        if self.heads is not None:
            rows = rows[self.heads.to(rows.device)]
        if self.shaping.average:
            rows = rows.mean(dim=0, keepdim=True)
        self.ranks.append(ranks)
        if not self.shaping.reduces:
            self.dense.append(rows)
        if self.shaping.top_k is not None:
            self.top.append(top_k(rows, self.shaping.top_k))
        if self.query_bins is not None:
            self._pool(rows, self.query_bins[ranks].to(rows.device))

    def _contiguous(self, first: int, last: int) -> bool:
        """Whether the kept rows of ranks first..last are consecutive, increasing positions
        (every step, not the ends alone: (0, 5, 2) spans 2 over 2 steps too)."""
        steps = self.positions[first : last + 1].diff()
        return bool((steps == 1).all())

    def _pool(self, rows: Tensor, query_bins: Tensor) -> None:
        assert self.key_bins is not None
        heads, blocks_q = rows.shape[0], len(self.query_bounds) - 1
        blocks_k = len(self.key_bounds) - 1
        key_bins = self.key_bins.to(rows.device)
        shape = (heads, rows.shape[1], blocks_k)
        if self.keys % blocks_k == 0:  # equal blocks: a view, 3x faster than the scatter
            cells = rows.reshape(*rows.shape[:-1], blocks_k, self.keys // blocks_k)
            row_max, row_sum = cells.amax(dim=-1), cells.sum(dim=-1)
        else:  # weights are >= 0: zeros are a neutral start for the max
            expanded = key_bins.expand_as(rows)
            row_max = rows.new_zeros(shape).scatter_reduce_(-1, expanded, rows, "amax")
            row_sum = rows.new_zeros(shape).index_add_(-1, key_bins, rows)
        if self.pooled is None:
            zeros = rows.new_zeros(heads, blocks_q, blocks_k)
            self.pooled = Pooled(zeros, zeros.clone(), self.query_bounds, self.key_bounds)
        into_blocks = query_bins[None, :, None].expand_as(row_max)
        self.pooled.max.scatter_reduce_(1, into_blocks, row_max, "amax")
        self.pooled.mean.index_add_(1, query_bins, row_sum)

    def result(self) -> Shaped:
        dense = None
        if not self.shaping.reduces:
            dense = self._in_order(self.dense) if self.dense else self._empty_dense()
        top = None
        if self.top:
            top = TopK(*(self._in_order(parts) for parts in zip(*self.top, strict=True)))
        pooled = self.pooled
        if pooled is not None:
            sums = pooled.mean
            sizes = _sizes(self.query_bounds)[:, None] * _sizes(self.key_bounds)[None, :]
            pooled = pooled._replace(mean=sums / sizes.to(sums))
            if not self.shaping.listed_queries:
                pooled = pooled._replace(query_bounds=self._positions_of(pooled.query_bounds))
        return Shaped(dense, top, pooled)

    def _in_order(self, parts: Sequence[Tensor]) -> Tensor:
        """The rows of the blocks, (H, r, …) each, in the order of `queries`: blocks come in
        position order, a list of queries may not."""
        rows = torch.cat(list(parts), dim=1)
        order = torch.cat(self.ranks)
        if bool((order.diff() > 0).all()):
            return rows
        return rows[:, order.argsort().to(rows.device)]

    def _positions_of(self, ranks: list[int]) -> list[int]:
        """Block bounds over kept rows, as token positions (the rows are a range here)."""
        positions = self.positions.tolist()
        return [positions[rank] if rank < len(positions) else positions[-1] + 1 for rank in ranks]

    def _empty_dense(self) -> Tensor:
        heads = len(self.heads) if self.heads is not None else self.num_heads
        heads = 1 if self.shaping.average else heads
        return torch.zeros(heads, 0, self.keys)


def _bins(bounds: Sequence[int]) -> Tensor:
    """The block of each position 0..bounds[-1] - bounds[0]."""
    sizes = _sizes(bounds)
    return torch.repeat_interleave(torch.arange(len(sizes)), sizes)


def _sizes(bounds: Sequence[int]) -> Tensor:
    edges = torch.tensor(list(bounds))
    return edges[1:] - edges[:-1]


def top_k(weights: Tensor, k: int) -> TopK:
    """Per query row of (…, L, S): the min(k, S) largest weights, their keys and their sum."""
    values, keys = weights.topk(min(k, weights.shape[-1]), dim=-1)
    return TopK(keys, values, values.sum(dim=-1))


def shape_weights(weights: Tensor, shaping: Shaping) -> Shaped:
    """One sequence's whole (H, L, S) weights, shaped (the reference for the blocked path)."""
    shaper = WeightsShaper(shaping, weights.shape[0], weights.shape[1], weights.shape[2])
    shaper.add(weights, 0)
    return shaper.result()
