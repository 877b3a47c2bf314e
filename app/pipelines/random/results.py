"""The random model's results: the library cuts the batch, the labels name rows and columns."""

from __future__ import annotations

from typing import Any

from app.http.schemas import OutputOptions
from app.pipelines.answer import sequence_answer
from app.pipelines.random.labels import EXTRA_KEY_LABELS, Labels
from attention import AttentionConfig, AttentionOutput
from attention.results import split_batch


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
