"""attention.shaping against references written out plainly here, and the blocked pass (weights
per block of queries) against the whole one, masks and extra keys included."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
from torch import Tensor

import attention.multi_head
from attention import InputError
from attention.shaping import Shaping, WeightsShaper, block_bounds, shape_weights
from tests.attention.helpers import assert_close, config, inputs, module

F64 = torch.float64


def weights(heads: int = 3, length: int = 11, keys: int = 9, seed: int = 0) -> Tensor:
    scores = torch.randn(heads, length, keys, generator=torch.Generator().manual_seed(seed))
    return torch.softmax(scores.double(), dim=-1)


def selected(full: Tensor, shaping: Shaping) -> Tensor:
    heads = list(shaping.heads) if shaping.heads is not None else list(range(full.shape[0]))
    rows = list(shaping.queries) if shaping.queries is not None else list(range(full.shape[1]))
    chosen = full[heads][:, rows]
    return chosen.mean(dim=0, keepdim=True) if shaping.average else chosen


def pooled_reference(matrix: Tensor, rows: list[int], columns: list[int]) -> tuple[Tensor, Tensor]:
    """Each block's max and mean, one block at a time (bounds over the matrix's own rows)."""
    heads = matrix.shape[0]
    maxima = torch.zeros(heads, len(rows) - 1, len(columns) - 1, dtype=matrix.dtype)
    means = torch.zeros_like(maxima)
    for i in range(len(rows) - 1):
        for j in range(len(columns) - 1):
            cell = matrix[:, rows[i] : rows[i + 1], columns[j] : columns[j + 1]]
            maxima[:, i, j] = cell.amax(dim=(-2, -1))
            means[:, i, j] = cell.mean(dim=(-2, -1))
    return maxima, means


def test_block_bounds_cover_every_position_in_nearly_equal_non_empty_blocks() -> None:
    assert block_bounds(10, 3) == [0, 3, 6, 10]
    assert block_bounds(4, 16) == [0, 1, 2, 3, 4]  # never more blocks than positions
    assert block_bounds(5, 2, start=7) == [7, 9, 12]
    for length in range(1, 40):
        bounds = block_bounds(length, 7)
        sizes = [b - a for a, b in itertools.pairwise(bounds)]
        assert min(sizes) >= 1
        assert max(sizes) - min(sizes) <= 1
        assert bounds[-1] == length


SHAPINGS = [
    Shaping(),
    Shaping(heads=(2, 0)),
    Shaping(queries=(0, 4, 10)),
    Shaping(queries=(0, 5, 2)),  # its ends two apart over two steps, yet not a range
    Shaping(queries=(1, 3, 9, 10), listed_queries=True, pool=2),
    Shaping(heads=(1,), queries=tuple(range(3, 9)), average=True),
    Shaping(top_k=4),
    Shaping(top_k=20),  # more than the keys: every key
    Shaping(pool=4),
    Shaping(pool=100),  # more cells than positions: one per position
    Shaping(heads=(1, 2), queries=tuple(range(2, 11)), top_k=3, pool=3),
    Shaping(average=True, top_k=2, pool=2),
]


@pytest.mark.parametrize("shaping", SHAPINGS, ids=repr)
def test_shaped_weights_equal_the_reference(shaping: Shaping) -> None:
    full = weights()
    shaped = shape_weights(full, shaping)
    chosen = selected(full, shaping)
    if shaping.reduces:
        assert shaped.dense is None
    else:
        assert shaped.dense is not None
        assert torch.equal(shaped.dense, chosen)
    if shaping.top_k is not None:
        assert shaped.top_k is not None
        k = min(shaping.top_k, full.shape[-1])
        order = chosen.argsort(dim=-1, descending=True)[..., :k]
        expected = chosen.gather(-1, order)
        assert torch.equal(shaped.top_k.weights, expected)
        assert torch.equal(chosen.gather(-1, shaped.top_k.keys), expected)
        assert_close(shaped.top_k.mass, expected.sum(dim=-1), F64)
    if shaping.pool is not None:
        assert shaped.pooled is not None
        rows = block_bounds(chosen.shape[1], shaping.pool)
        columns = block_bounds(full.shape[-1], shaping.pool)
        maxima, means = pooled_reference(chosen, rows, columns)
        assert torch.equal(shaped.pooled.max, maxima)
        assert_close(shaped.pooled.mean, means, F64)
        positions = list(shaping.queries or range(full.shape[1]))
        in_positions = [*(positions[r] for r in rows[:-1]), positions[-1] + 1]
        expected_bounds = rows if shaping.listed_queries else in_positions
        assert shaped.pooled.query_bounds == expected_bounds
        assert shaped.pooled.key_bounds == columns


@pytest.mark.parametrize("shaping", SHAPINGS, ids=repr)
@pytest.mark.parametrize("rows", [1, 3, 5])
def test_blocks_of_queries_give_what_the_whole_matrix_gives(shaping: Shaping, rows: int) -> None:
    full = weights()
    whole = shape_weights(full, shaping)
    shaper = WeightsShaper(shaping, 3, 11, 9)
    for first in range(0, 11, rows):
        shaper.add(full[:, first : first + rows], first)
    blocked = shaper.result()
    for expected, actual in zip(whole, blocked, strict=True):
        if isinstance(expected, Tensor):
            assert isinstance(actual, Tensor)
            assert_close(actual, expected, F64)
        elif expected is not None:
            for part, other in zip(expected, actual, strict=True):
                if isinstance(part, Tensor):
                    assert_close(other, part, F64)
                else:
                    assert other == part


@pytest.mark.parametrize(
    ("shaping", "field"),
    [(Shaping(heads=(3,)), "output.heads"), (Shaping(queries=(0, 11)), "output.queries")],
)
def test_an_index_out_of_range_is_an_input_error_naming_the_field(
    shaping: Shaping, field: str
) -> None:
    with pytest.raises(InputError) as caught:
        shape_weights(weights(), shaping)
    assert caught.value.field == field
    assert "there are" in str(caught.value)


CONFIGS: list[dict[str, Any]] = [
    {},
    {"causal": True},
    {"window": 3, "positional_encoding": "alibi"},
    {"add_bias_kv": True, "add_zero_attn": True},
    {"num_kv_heads": 1, "positional_encoding": "rope"},
]


@pytest.mark.parametrize("fields", CONFIGS, ids=repr)
def test_the_blocked_pass_hands_out_the_weights_and_computes_the_same_output(
    fields: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(**fields)
    layer = module(cfg)
    x = inputs(cfg, 2, 7, 7, self_attention=True)
    padding = torch.zeros(2, 7, dtype=torch.bool)
    padding[1, 5:] = True
    dense = layer(x.query, key_padding_mask=padding)
    monkeypatch.setattr(attention.multi_head, "query_block_rows", lambda *_: 3)
    blocks: list[tuple[int, Tensor]] = []
    blocked = layer(
        x.query,
        key_padding_mask=padding,
        weights_sink=lambda block, first: blocks.append((first, block.clone())),
    )
    assert [first for first, _ in blocks] == [0, 3, 6]
    assert dense.weights is not None
    assert blocked.weights is None
    assert_close(torch.cat([block for _, block in blocks], dim=2), dense.weights, F64)
    assert_close(blocked.output, dense.output, F64)
    assert dense.fully_masked is not None
    assert blocked.fully_masked is not None
    assert torch.equal(blocked.fully_masked, dense.fully_masked)


def test_pooled_blocks_of_listed_queries_cover_only_the_rows_asked_for() -> None:
    weights = torch.rand(2, 6, 6, dtype=F64).softmax(dim=-1)

    pooled = shape_weights(weights, Shaping(queries=(1, 3), listed_queries=True, pool=2)).pooled

    assert pooled is not None
    assert pooled.query_bounds == [0, 1, 2]  # indices into queries: block 0 is row 1, block 1 row 3
    assert torch.equal(pooled.max[:, 0], weights[:, 1].reshape(2, 2, 3).amax(dim=-1))
