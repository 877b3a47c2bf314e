"""`output.heads`, `queries`, `top_k` and `pool` translated into the library's Shaping, checked
against each sequence before any work, and the shaped weights written into a result.

The math (selection, top-k, pooling, the blocked pass) is in attention/shaping.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from app.http.schemas import OutputOptions
from app.pipelines.answer import numpy
from attention import AttentionConfig, InputError
from attention.results import KeyColumns, key_columns
from attention.shaping import Shaped, Shaping, WeightsShaper, check_shaping, shape_weights

Array = np.ndarray[Any, Any]


def sequence_shaping(options: OutputOptions, length: int) -> Shaping | None:
    """The shaping of one sequence of `length` queries; None when nothing is shaped."""
    if not options.shapes_attention():
        return None
    queries = options.queries
    positions: tuple[int, ...] | None = None
    if isinstance(queries, list):
        positions = tuple(queries)
    elif queries is not None:
        if queries.start >= length:
            raise InputError(
                f"output.queries.start is {queries.start}, but the sequence has {length} "
                f"queries (0..{length - 1})",
                field="output.queries.start",
            )
        positions = tuple(range(queries.start, min(queries.stop, length)))
    return Shaping(
        heads=None if options.heads is None else tuple(options.heads),
        queries=positions,
        listed_queries=isinstance(queries, list),
        average=options.attention == "average",
        top_k=options.top_k,
        pool=options.pool,
    )


def checked_shapings(
    options: OutputOptions, heads: int, lengths: Sequence[int]
) -> list[Shaping] | None:
    """Each sequence's shaping, its indices checked (422 naming the field); None: unshaped."""
    if not options.shapes_attention():
        return None
    shapings = []
    for length in lengths:
        shaping = sequence_shaping(options, length)
        assert shaping is not None
        check_shaping(shaping, heads, length)
        shapings.append(shaping)
    return shapings


def batch_shaping(options: OutputOptions, longest: int) -> Shaping | None:
    """The largest sequence's shaping, for the estimate (sizes only, nothing checked)."""
    if not options.shapes_attention():
        return None
    queries = options.queries
    if queries is not None and not isinstance(queries, list):
        start = min(queries.start, longest - 1)
        queries = list(range(start, min(queries.stop, longest)))
    return Shaping(
        heads=None if options.heads is None else tuple(options.heads),
        queries=None if queries is None else tuple(queries),
        top_k=options.top_k,
        pool=options.pool,
    )


def computes_in_blocks(options: OutputOptions) -> bool:
    """Whether the random model's pass runs per block of queries: only top-k pairs and pooled
    grids are kept, no dense weights, steps or metrics (they need the whole matrix)."""
    reduced = options.top_k is not None or options.pool is not None
    return reduced and not options.step_names() and not options.metrics


def weights_shapers(
    shapings: list[Shaping], heads: int, query_lengths: Sequence[int], key_counts: Sequence[int]
) -> list[WeightsShaper]:
    """One shaper per sequence: its queries, and its keys with any extra ones."""
    return [
        WeightsShaper(shaping, heads, length, keys)
        for shaping, length, keys in zip(shapings, query_lengths, key_counts, strict=True)
    ]


def batch_shapers(
    shapings: list[Shaping] | None,
    options: OutputOptions,
    config: AttentionConfig,
    query_lengths: Sequence[int],
    key_lengths: Sequence[int],
) -> tuple[list[WeightsShaper] | None, BatchSink | None]:
    """The random model's shapers, one per sequence, and the sink that feeds them block by
    block when the pass runs in blocks (None: the dense weights are shaped after the pass)."""
    if shapings is None:
        return None, None
    keys = [length + config.extra_keys for length in key_lengths]
    shapers = weights_shapers(shapings, config.num_heads, query_lengths, keys)
    if not computes_in_blocks(options):
        return shapers, None
    longest = max(key_lengths)
    columns = [key_columns(length, longest, config.extra_keys) for length in key_lengths]
    return shapers, BatchSink(shapers, columns)


class BatchSink:
    """Hands each block of a batch's weights (B, H, rows, S) to each sequence's shaper, cut to
    the sequence's own keys: the library's `weights_sink` for the blocked pass."""

    def __init__(self, shapers: list[WeightsShaper], columns: list[KeyColumns]) -> None:
        self.shapers = shapers
        self.columns = columns

    def __call__(self, block: Tensor, first: int) -> None:
        for row, (shaper, columns) in enumerate(zip(self.shapers, self.columns, strict=True)):
            shaper.add(block[row][..., columns], first)


def shaped_fields(shaped: Shaped, shaping: Shaping) -> dict[str, Any]:
    """`attention`, `queries`, `top_k` and `pool` of a result (no head axis for an average)."""
    return layers_shaped_fields([shaped], shaping, layer_axis=False)


def layers_shaped_fields(
    per_layer: list[Shaped], shaping: Shaping, *, layer_axis: bool = True
) -> dict[str, Any]:
    """The same over several layers, stacked on a leading layer axis (pretrained models)."""

    def stack(tensors: list[Tensor]) -> Array:
        stacked = torch.stack(tensors) if layer_axis else tensors[0]
        if shaping.average:
            stacked = stacked.squeeze(-3 if stacked.dim() >= 3 else -2)
        return numpy(stacked)

    first = per_layer[0]
    fields: dict[str, Any] = {"attention": None, "top_k": None, "pool": None}
    if shaping.queries is not None:
        fields["queries"] = list(shaping.queries)
    if first.dense is not None:
        fields["attention"] = stack(
            [shaped.dense for shaped in per_layer if shaped.dense is not None]
        )
    if first.top_k is not None:
        tops = [shaped.top_k for shaped in per_layer if shaped.top_k is not None]
        fields["top_k"] = {
            "keys": stack([top.keys.to(torch.int32) for top in tops]),
            "weights": stack([top.weights for top in tops]),
            "mass": stack([top.mass[..., None] for top in tops])[..., 0],
        }
    if first.pooled is not None:
        pools = [shaped.pooled for shaped in per_layer if shaped.pooled is not None]
        fields["pool"] = {
            "max": stack([pooled.max for pooled in pools]),
            "mean": stack([pooled.mean for pooled in pools]),
            "query_bounds": first.pooled.query_bounds,
            "key_bounds": first.pooled.key_bounds,
        }
    return fields


def shaped_layers(chosen: Iterable[Tensor], options: OutputOptions, length: int) -> dict[str, Any]:
    """The shaped fields of one sequence's weights in each chosen layer ((H, n, S) each), as
    `layers_shaped_fields` writes them (pretrained models); {} when nothing is shaped."""
    shaping = sequence_shaping(options, length)
    if shaping is None:
        return {}
    return layers_shaped_fields([shape_weights(layer, shaping) for layer in chosen], shaping)


def row_shaping(options: OutputOptions) -> Shaping | None:
    """The shaping of lone query rows, a decoder's generated tokens (docs/models.md): heads,
    the average and top_k as for a sequence; `pool` blocks the keys only (one query, one query
    block); `queries` does not apply (each row is its own query). None when nothing is shaped."""
    if not options.shapes_attention():
        return None
    return Shaping(
        heads=None if options.heads is None else tuple(options.heads),
        average=options.attention == "average",
        top_k=options.top_k,
        pool=options.pool,
    )
