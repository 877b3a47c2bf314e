"""The random model's results: the library cuts the batch, the labels name rows and columns."""

from __future__ import annotations

from typing import Any

from app.http.schemas import OutputOptions
from app.pipelines.answer import sequence_answer
from app.pipelines.random.labels import EXTRA_KEY_LABELS, Labels
from app.pipelines.shaping import shaped_fields
from attention import AttentionConfig, AttentionOutput
from attention.results import split_batch
from attention.shaping import WeightsShaper


def cut_results(
    result: AttentionOutput,
    labels: Labels,
    config: AttentionConfig,
    options: OutputOptions,
    shapers: list[WeightsShaper] | None = None,
) -> list[dict[str, Any]]:
    """One answer per sequence; `shapers` shape its weights (fed here unless the pass fed them
    block by block)."""
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
    answers = [
        sequence_answer(sequence, queries, [*keys, *extra_labels], options)
        for sequence, queries, keys in zip(sequences, labels.queries, labels.keys, strict=True)
    ]
    for answer, sequence, shaper in zip(answers, sequences, shapers or (), strict=False):
        if sequence.weights is not None:  # the dense pass: the whole matrix at once
            shaper.add(sequence.weights, 0)
        answer.update(shaped_fields(shaper.result(), shaper.shaping))
    return answers
