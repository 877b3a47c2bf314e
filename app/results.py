"""Cut a padded batch's tensors into one unpadded result per sequence, as numpy arrays.

A sequence of 3 tokens in a batch padded to 9 gets 3 × 3 attention: its own queries and keys,
plus bias_k and the zero key, which sit after the padding in the batch's key axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from app.labels import EXTRA_KEY_LABELS, Labels
from app.schemas import OutputOptions
from attention import AttentionConfig, AttentionOutput, checkpoint
from attention.metrics import head_metrics
from attention.steps import LAYOUTS

Array = np.ndarray[Any, Any]


def key_columns(length: int, longest: int, extra: int) -> slice | Array:
    """Indices of a sequence's keys in the padded key axis: its own, then the extra keys."""
    if length == longest:
        return slice(0, longest + extra)
    columns: Array = np.r_[0:length, longest : longest + extra]
    return columns


def cut_results(
    result: AttentionOutput, labels: Labels, config: AttentionConfig, options: OutputOptions
) -> list[dict[str, Any]]:
    longest_key = max(labels.key_lengths)
    arrays = {name: _numpy(tensor) for name, tensor in result.trace.items()}
    output = _numpy(result.output)
    weights = None if result.weights is None else _numpy(result.weights)
    fully_masked = None if result.fully_masked is None else _numpy(result.fully_masked)
    extra_labels = [
        label
        for label, present in zip(
            EXTRA_KEY_LABELS, (config.add_bias_kv, config.add_zero_attn), strict=True
        )
        if present
    ]
    results = []
    for row, (queries, keys) in enumerate(zip(labels.queries, labels.keys, strict=True)):
        checkpoint()
        length = len(queries)
        columns = key_columns(len(keys), longest_key, config.extra_keys)
        own_weights = None if weights is None else weights[row, :, :length][..., columns]
        masked_rows = None if fully_masked is None else fully_masked[row, :, :length]
        results.append({
            "tokens": queries,
            "key_tokens": [*keys, *extra_labels],
            "output": output[row, :length],
            "attention": _attention(own_weights, options),
            "steps": {
                name: cut_step(name, arrays[name], row, length, columns)
                for name in options.step_names()
            },
            "metrics": _metrics(own_weights, len(keys), masked_rows) if options.metrics else None,
            "fully_masked_queries": [] if masked_rows is None else
                np.flatnonzero(masked_rows.any(axis=0)).tolist(),
        })  # fmt: skip
    return results


def cut_step(name: str, array: Array, row: int, length: int, columns: slice | Array) -> Array:
    """One sequence's part of a batched step tensor."""
    part: Array
    layout = LAYOUTS[name]  # the registry's layouts: attention.steps.LAYOUT_SHAPES
    if layout == "tokens":
        part = array[row, :length]
    elif layout == "head_queries":
        part = array[row, :, :length]
    elif layout == "head_keys":
        part = array[row][:, columns]
    else:
        part = array[row, :, :length][..., columns]
    return part


def _attention(weights: Array | None, options: OutputOptions) -> Array | None:
    if weights is None or options.attention == "none":
        return None
    if options.attention == "average":
        average: Array = weights.mean(axis=0)
        return average
    return weights


def _metrics(
    weights: Array | None, positioned_keys: int, masked_rows: Array | None
) -> dict[str, Any]:
    # metrics make the model compute weights, so both are here
    assert weights is not None
    assert masked_rows is not None
    metrics = head_metrics(
        torch.from_numpy(np.ascontiguousarray(weights)),
        positioned_keys,
        torch.from_numpy(masked_rows),
    )
    return {
        "entropy": metrics.entropy.numpy(),
        "mean_distance": metrics.mean_distance.numpy(),
        "top_key": metrics.top_key.numpy(),
    }


def _numpy(tensor: Tensor) -> Array:
    array: Array = tensor.detach().cpu().numpy()
    return array
