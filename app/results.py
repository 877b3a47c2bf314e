"""One result per sequence, as the answer carries it: the library's unpadded tensors as numpy
arrays, beside the token labels of their rows and columns (attention.results cuts them)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from app.labels import EXTRA_KEY_LABELS, Labels
from app.schemas import OutputOptions
from attention import AttentionConfig, AttentionOutput
from attention.metrics import HeadMetrics
from attention.results import SequenceResult, split_batch

Array = np.ndarray[Any, Any]


def cut_results(
    result: AttentionOutput, labels: Labels, config: AttentionConfig, options: OutputOptions
) -> list[dict[str, Any]]:
    extra_labels = [
        label
        for label, present in zip(
            EXTRA_KEY_LABELS, (config.add_bias_kv, config.add_zero_attn), strict=True
        )
        if present
    ]
    sequences = split_batch(
        result,
        labels.query_lengths,
        labels.key_lengths,
        config.extra_keys,
        steps=options.step_names(),
        metrics=options.metrics,
    )
    return [
        sequence_answer(sequence, queries, [*keys, *extra_labels], options)
        for sequence, queries, keys in zip(sequences, labels.queries, labels.keys, strict=True)
    ]


def sequence_answer(
    sequence: SequenceResult, tokens: list[Any], key_tokens: list[Any], options: OutputOptions
) -> dict[str, Any]:
    masked = sequence.fully_masked
    return {
        "tokens": tokens,
        "key_tokens": key_tokens,
        "output": numpy(sequence.output),
        "attention": attention_answer(sequence.weights, options),
        "steps": {name: numpy(tensor) for name, tensor in sequence.steps.items()},
        "metrics": metrics_answer(sequence.metrics),
        "fully_masked_queries": []
        if masked is None
        else masked.any(dim=0).nonzero().flatten().tolist(),
    }


def attention_answer(weights: Tensor | None, options: OutputOptions) -> Array | None:
    """(…, H, L, S) weights as asked: per head, averaged over the heads, or none."""
    if weights is None or options.attention == "none":
        return None
    if options.attention == "average":
        return numpy(weights.mean(dim=-3))
    return numpy(weights)


def metrics_answer(metrics: HeadMetrics | None) -> dict[str, Array] | None:
    if metrics is None:
        return None
    return {name: numpy(value) for name, value in metrics._asdict().items()}


def numpy(tensor: Tensor) -> Array:
    array: Array = tensor.detach().cpu().numpy()
    return array
