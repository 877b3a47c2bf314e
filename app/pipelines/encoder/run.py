"""POST /attention with a pretrained model: tokenize, run every layer, cut per sequence.

Per result, arrays gain a leading layer axis over the requested `layers`: attention is
Nl × H × L × L, each step Nl × (its shape in the step registry, GET /steps), metrics Nl × H.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from app.http.schemas import AttentionRequest
from app.pipelines.answer import attention_answer, metrics_answer, numpy
from app.pipelines.encoder.checks import TRACED_STEPS, truncation_note
from app.pipelines.encoder.cost import weighted_layers
from app.pipelines.encoder.registry import Pretrained
from app.pipelines.shaping import layers_shaped_fields, sequence_shaping
from attention.bert import (
    BertOutput,
    TokenizedBatch,
    aggregate_words,
    attention_rollout,
    sentence_embeddings,
    special_token_shares,
)
from attention.metrics import HeadMetrics, head_metrics
from attention.results import cut_step
from attention.shaping import shape_weights

Array = np.ndarray[Any, Any]


def run_pretrained(
    request: AttentionRequest, pretrained: Pretrained, batch: TokenizedBatch, layers: list[int]
) -> list[dict[str, Any]]:
    device = next(pretrained.model.parameters()).device
    batch = batch.to(device)
    padded = min(batch.lengths) != max(batch.lengths)
    padding = batch.key_padding_mask if padded else None
    traced = [step for step in request.output.step_names() if step in TRACED_STEPS]
    weighted = weighted_layers(request, layers, pretrained.info.config.num_hidden_layers)
    output = pretrained.model(
        batch.input_ids,
        key_padding_mask=padding,
        token_type_ids=batch.token_type_ids,
        output_attentions=weighted,
        trace_layers=layers if traced else (),
    )
    pooled = (
        sentence_embeddings(output.last_hidden_state, padding, pretrained.info.pooling)
        .cpu()
        .numpy()
        if request.output.embedding
        else None
    )
    return [
        _sequence_result(request, output, batch, row, layers, traced, pooled)
        for row in range(len(batch.lengths))
    ]


def _sequence_result(
    request: AttentionRequest,
    output: BertOutput,
    batch: TokenizedBatch,
    row: int,
    layers: list[int],
    traced: list[str],
    pooled: Array | None,
) -> dict[str, Any]:
    length = batch.lengths[row]
    kept = output.attention_layers
    every_layer = output.sequence_attentions(row, length) if kept else None  # (K, H, n, n)
    chosen = None if every_layer is None else every_layer[[kept.index(i) for i in layers]]
    tokens = list(batch.tokens[row])
    options = request.output
    metrics = analysis = None
    if chosen is not None and options.metrics:
        metrics = metrics_answer(layer_metrics(chosen, length))
    if every_layer is not None and chosen is not None and options.analysis:
        analysis = _analysis(every_layer, chosen, batch, row)
    answer = {
        "tokens": tokens,
        "key_tokens": tokens,
        "output": numpy(output.last_hidden_state[row, :length]),
        "attention": attention_answer(chosen, options),  # (Nl, H, n, n) or (Nl, n, n)
        "layers": layers,
        "steps": {step: layer_steps(output.traces, step, row, length, layers) for step in traced},
        "metrics": metrics,
        "analysis": analysis,
        "embedding": None if pooled is None else pooled[row],
        "fully_masked_queries": [],
        "truncated": truncation_note(batch, row),
    }
    shaping = sequence_shaping(options, length)
    if shaping is not None and chosen is not None:
        shaped = [shape_weights(layer, shaping) for layer in chosen]
        answer.update(layers_shaped_fields(shaped, shaping))
    return answer


def layer_steps(
    traces: Mapping[int, Mapping[str, Tensor]], step: str, row: int, length: int, layers: list[int]
) -> Array:
    """Sequence `row`'s step `step` in each of `layers`, unpadded, stacked: (Nl, …)."""
    columns = slice(0, length)
    parts = [cut_step(step, traces[layer][step], row, length, columns) for layer in layers]
    return numpy(torch.stack(parts))  # (Nl, …)


def layer_metrics(chosen: Tensor, length: int) -> HeadMetrics:
    """Each layer's metrics, stacked: (Nl, H), (Nl, H), (Nl, H, n)."""
    none_masked = torch.zeros(chosen.shape[1], length, dtype=torch.bool, device=chosen.device)
    per_layer = [head_metrics(layer, length, none_masked) for layer in chosen]
    return HeadMetrics(*(torch.stack(values) for values in zip(*per_layer, strict=True)))


def _analysis(
    every_layer: Tensor, chosen: Tensor, batch: TokenizedBatch, row: int
) -> dict[str, Any]:
    shares = special_token_shares(chosen, batch.tokens[row])
    return {
        "rollout": numpy(attention_rollout(every_layer)),
        "special_share": {token: numpy(share) for token, share in shares.items()},
        "words": batch.group_labels(row),
        "word_attention": numpy(aggregate_words(chosen, batch.word_groups(row))),
    }
