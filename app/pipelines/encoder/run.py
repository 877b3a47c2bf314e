"""POST /attention with a pretrained model: tokenize, run every layer, cut per sequence.

Per result, arrays gain a leading layer axis over the requested `layers`: attention is
Nl × H × L × L, each step Nl × (its shape in the step registry, GET /steps), metrics Nl × H.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from app.http.schemas import AttentionRequest, OutputOptions
from app.pipelines.answer import attention_answer, metrics_answer, numpy
from app.pipelines.encoder.checks import TRACED_STEPS, truncation_note
from app.pipelines.encoder.cost import weighted_layers
from app.pipelines.encoder.registry import Pretrained
from app.pipelines.shaping import shaped_layers
from attention.bert import (
    BertOutput,
    EncoderCall,
    LayerHook,
    LayerOutput,
    TokenizedBatch,
    aggregate_words,
    attention_rollout,
    sentence_embeddings,
    special_token_shares,
)
from attention.metrics import HeadMetrics, head_metrics
from attention.results import cut_step

Array = np.ndarray[Any, Any]


def run_pretrained(
    request: AttentionRequest,
    pretrained: Pretrained,
    batch: TokenizedBatch,
    layers: list[int],
    output: BertOutput,
) -> list[dict[str, Any]]:
    """Every sequence's whole answer, cut from the forward's `output` (`forward_pretrained`,
    or the request's part of a joined pass: app/pipelines/encoder/batching.py)."""
    traced = traced_steps(request)
    pooled = _pooled(request, pretrained, batch, output)
    return [
        _sequence_result(request, output, batch, row, layers, traced, pooled)
        for row in range(len(batch.lengths))
    ]


def stream_pretrained(
    request: AttentionRequest,
    pretrained: Pretrained,
    batch: TokenizedBatch,
    layers: list[int],
    on_layer: Callable[[int, list[dict[str, Any]]], None],
) -> list[dict[str, Any]]:
    """The same answer in parts: `on_layer(index, results)` with each requested layer's fields
    of every sequence (no layer axis) as soon as the layer is computed; then returns each
    sequence's remaining fields (app/pipelines/frames.py)."""
    traced = traced_steps(request)

    def layer_done(layer: LayerOutput) -> None:
        if layer.index in layers:
            on_layer(layer.index, _one_layer_fields(request, layer, batch, traced))

    output = forward_pretrained(request, pretrained, batch, layers, layer_done)
    pooled = _pooled(request, pretrained, batch, output)
    return [
        _end_fields(request, output, batch, row, layers, pooled)
        for row in range(len(batch.lengths))
    ]


def traced_steps(request: AttentionRequest) -> list[str]:
    return [step for step in request.output.step_names() if step in TRACED_STEPS]


def encoder_call(
    request: AttentionRequest, pretrained: Pretrained, batch: TokenizedBatch, layers: list[int]
) -> EncoderCall:
    """The request's forward arguments, on the model's device: the padding mask only when the
    sequences' lengths differ, the weights of the layers the answer needs."""
    device = next(pretrained.model.parameters()).device
    batch = batch.to(device)
    weighted = weighted_layers(request, layers, pretrained.info.config.num_hidden_layers)
    return EncoderCall(batch.input_ids, _padding(batch), batch.token_type_ids, weighted)


def forward_pretrained(
    request: AttentionRequest,
    pretrained: Pretrained,
    batch: TokenizedBatch,
    layers: list[int],
    on_layer: LayerHook | None = None,
) -> BertOutput:
    """The request's own pass over every layer."""
    call = encoder_call(request, pretrained, batch, layers)
    output: BertOutput = pretrained.model(
        call.input_ids,
        key_padding_mask=call.key_padding_mask,
        token_type_ids=call.token_type_ids,
        output_attentions=call.output_attentions,
        trace_layers=layers if traced_steps(request) else (),
        on_layer=on_layer,
    )
    return output


def _padding(batch: TokenizedBatch) -> Tensor | None:
    padded = min(batch.lengths) != max(batch.lengths)
    return batch.key_padding_mask if padded else None


def _pooled(
    request: AttentionRequest, pretrained: Pretrained, batch: TokenizedBatch, output: BertOutput
) -> Array | None:
    """The sentence embeddings, if asked for."""
    if not request.output.embedding:
        return None
    hidden = output.last_hidden_state
    padding = _padding(batch.to(hidden.device))
    return numpy(sentence_embeddings(hidden, padding, pretrained.info.pooling))


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
    chosen = _chosen_layers(output, row, length, layers)
    tokens = list(batch.tokens[row])
    return {
        "tokens": tokens,
        "key_tokens": tokens,
        **_layer_fields(request.output, chosen, output.traces, row, length, layers, traced),
        **_end_fields(request, output, batch, row, layers, pooled),
    }


def _chosen_layers(output: BertOutput, row: int, length: int, layers: list[int]) -> Tensor | None:
    """Sequence `row`'s weights in `layers`: (Nl, H, n, n); None when none were kept."""
    kept = output.attention_layers
    if not kept:
        return None
    every_layer = output.sequence_attentions(row, length)  # (K, H, n, n)
    return every_layer[[kept.index(i) for i in layers]]


def _layer_fields(
    options: OutputOptions,
    chosen: Tensor | None,
    traces: Mapping[int, Mapping[str, Tensor]],
    row: int,
    length: int,
    layers: list[int],
    traced: list[str],
) -> dict[str, Any]:
    """What a result holds per layer (frames.LAYER_FIELDS), on a leading layer axis."""
    metrics = None
    if chosen is not None and options.metrics:
        metrics = metrics_answer(layer_metrics(chosen, length))
    fields = {
        "attention": attention_answer(chosen, options),  # (Nl, H, n, n) or (Nl, n, n)
        "steps": {step: layer_steps(traces, step, row, length, layers) for step in traced},
        "metrics": metrics,
    }
    if chosen is not None:
        fields.update(shaped_layers(chosen, options, length))
    return fields


def _one_layer_fields(
    request: AttentionRequest, layer: LayerOutput, batch: TokenizedBatch, traced: list[str]
) -> list[dict[str, Any]]:
    """Each sequence's `_layer_fields` for one layer, cut from the same code with a layer axis
    of one, and that axis dropped: a slice of the whole answer, number for number."""
    results = []
    for row, length in enumerate(batch.lengths):
        weights = layer.weights
        # contiguous, as the whole answer's copy (an index) is: the same reductions' order
        chosen = (
            None if weights is None else weights[row : row + 1, :, :length, :length].contiguous()
        )
        traces = {layer.index: layer.trace}
        fields = _layer_fields(request.output, chosen, traces, row, length, [layer.index], traced)
        results.append(_drop_layer_axis(fields))
    return results


def _drop_layer_axis(value: Any) -> Any:
    """Every array's leading axis of one removed; lists (positions, bounds) are not per layer."""
    if isinstance(value, np.ndarray):
        return value[0]
    if isinstance(value, dict):
        return {name: _drop_layer_axis(item) for name, item in value.items()}
    return value


def _end_fields(
    request: AttentionRequest,
    output: BertOutput,
    batch: TokenizedBatch,
    row: int,
    layers: list[int],
    pooled: Array | None,
) -> dict[str, Any]:
    """What a result holds once every layer is computed: the output, the analysis, ..."""
    length = batch.lengths[row]
    analysis = None
    if request.output.analysis and output.attention_layers:
        every_layer = output.sequence_attentions(row, length)  # (K, H, n, n)
        chosen = _chosen_layers(output, row, length, layers)
        assert chosen is not None
        analysis = _analysis(every_layer, chosen, batch, row)
    return {
        "output": numpy(output.last_hidden_state[row, :length]),
        "layers": layers,
        "analysis": analysis,
        "embedding": None if pooled is None else pooled[row],
        "fully_masked_queries": [],
        "truncated": truncation_note(batch, row),
    }


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
