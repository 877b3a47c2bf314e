"""POST /attention with a pretrained model: tokenize, run every layer, cut per sequence.

Per result, arrays gain a leading layer axis over the requested `layers`: attention is
Nl × H × L × L, each step Nl × (its shape in the step registry, GET /steps), metrics Nl × H.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from app.limits import (
    ITEM_BYTES,
    Estimate,
    at_most,
    check_estimate,
    number_bytes,
    peak_estimate,
)
from app.pretrained import Pretrained
from app.results import attention_answer, metrics_answer, numpy
from app.schemas import AttentionRequest
from app.settings import Settings
from attention import STEPS, Dims, InputError, step_elements
from attention.bert import (
    BertConfig,
    BertOutput,
    TokenizedBatch,
    aggregate_words,
    attention_rollout,
    sentence_embeddings,
    special_token_shares,
)
from attention.cost import forward_elements, returned_elements
from attention.metrics import HeadMetrics, head_metrics
from attention.results import cut_step

UNSUPPORTED_INPUTS = (
    "embeddings", "key_sequences", "key_embeddings", "value_embeddings", "key_padding_mask",
    "attn_mask", "parameters",
)  # fmt: skip
# every step from the layer's input on: token embedding and position happen once, before layer 0
TRACED_STEPS = STEPS[STEPS.index("inputs") :]
Array = np.ndarray[Any, Any]


def check_pretrained_request(request: AttentionRequest, name: str) -> None:
    """422 for the inputs a fixed, pretrained model cannot take."""
    for field in UNSUPPORTED_INPUTS:
        if getattr(request, field) is not None:
            raise InputError(f"{field} is not supported with model={name!r}", field=field)
    fixed = sorted(request.config.model_fields_set - {"dtype"})
    if fixed:
        raise InputError(
            f"model={name!r} has a fixed configuration (see GET /models); of config only dtype "
            f"may be set, not {', '.join(fixed)}",
            field="config",
        )
    if request.sequences is not None and not all(
        isinstance(token, str) for sequence in request.sequences for token in sequence
    ):
        raise InputError(
            f"model={name!r} takes words: sequences of strings, or text", field="sequences"
        )
    unknown = [step for step in request.output.step_names() if step not in TRACED_STEPS]
    if request.output.steps != "all" and unknown:
        raise InputError(
            f"steps {unknown} are not traced for model={name!r}; available: {list(TRACED_STEPS)}",
            field="output.steps",
        )


def resolve_layers(request: AttentionRequest, num_layers: int) -> list[int]:
    if request.layers == "all":
        return list(range(num_layers))
    if not request.layers:
        raise InputError("layers must name at least one layer, or be 'all'", field="layers")
    for layer in request.layers:
        if not 0 <= layer < num_layers:
            raise InputError(
                f"layer {layer} does not exist: the model has layers 0..{num_layers - 1}",
                field="layers",
            )
    return list(dict.fromkeys(request.layers))


def tokenize_request(request: AttentionRequest, pretrained: Pretrained) -> TokenizedBatch:
    tokenizer = pretrained.tokenizer
    if request.sequences is not None:
        words = [[str(token) for token in sequence] for sequence in request.sequences]
        return tokenizer.encode_words(words)
    text = request.text
    return tokenizer.encode([text] if isinstance(text, str) else list(text or []))


def check_pretrained_limits(
    request: AttentionRequest, batch: TokenizedBatch, estimate: Estimate, settings: Settings
) -> None:
    lengths = batch.lengths
    at_most("batch size", len(lengths), settings.max_batch, "max_batch")
    at_most("tokens per sequence", max(lengths), settings.max_tokens, "max_tokens")
    check_estimate(estimate, settings, "ask for fewer layers or steps, or attention 'none'")


def weighted_layers(request: AttentionRequest, layers: list[int], num_layers: int) -> list[int]:
    """The layers whose attention weights the answer uses: every one for the rollout, the
    requested ones for weights or metrics, none otherwise (they run on the fused kernel)."""
    options = request.output
    if options.analysis:
        return list(range(num_layers))
    if options.attention != "none" or options.metrics:
        return sorted(layers)
    return []


def pretrained_estimate(
    request: AttentionRequest,
    batch: TokenizedBatch,
    config: BertConfig,
    layers: list[int],
    media_type: str,
) -> Estimate:
    """Every layer's pass and what it keeps: the hidden states, the weights of the layers that
    are used, the traces of the traced ones; then the answer, cut and encoded."""
    dims = Dims(
        batch=len(batch.lengths),
        queries=max(batch.lengths),
        keys=max(batch.lengths),
        d_model=config.hidden_size,
        heads=config.num_attention_heads,
        kv_width=config.hidden_size,
    )
    options = request.output
    steps = tuple(step for step in options.step_names() if step in TRACED_STEPS)
    kept = len(weighted_layers(request, layers, config.num_hidden_layers))
    matrix, rows = step_elements("attention", dims), step_elements("inputs", dims)
    attention = forward_elements(
        config.attention_config(), dims, traced=bool(steps), weights=kept > 0
    )
    feed_forward = 2 * dims.batch * dims.queries * config.intermediate_size + rows
    traces = len(layers) * sum(step_elements(step, dims) for step in steps)
    # every layer's hidden state, the kept weights and traces: alive until the answer is cut
    held = (config.num_hidden_layers + 1) * rows + kept * matrix + traces
    output = step_elements("output", dims)
    returned = len(layers) * (returned_elements(dims, steps, options.attention) - output) + output
    if options.analysis:
        returned += dims.batch * dims.queries**2 + len(layers) * matrix  # rollout, words
    dtype = request.config.dtype
    labels = 2 * sum(len(token) + 4 for tokens in batch.tokens for token in tokens)
    answer = returned * number_bytes(media_type, dtype, options.precision) + labels
    # the pass, then the cut (its copies beside what they are cut from), then the encoding
    forward = held + max(attention, feed_forward, returned)
    return peak_estimate(ITEM_BYTES[dtype], built=0, forward=forward, held=returned, answer=answer)


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
        sentence_embeddings(output.last_hidden_state, padding).cpu().numpy()
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
        metrics = metrics_answer(_layer_metrics(chosen, length))
    if every_layer is not None and chosen is not None and options.analysis:
        analysis = _analysis(every_layer, chosen, batch, row)
    return {
        "tokens": tokens,
        "key_tokens": tokens,
        "output": numpy(output.last_hidden_state[row, :length]),
        "attention": attention_answer(chosen, options),  # (Nl, H, n, n) or (Nl, n, n)
        "layers": layers,
        "steps": {step: _layer_steps(output, step, row, length, layers) for step in traced},
        "metrics": metrics,
        "analysis": analysis,
        "embedding": None if pooled is None else pooled[row],
        "fully_masked_queries": [],
    }


def _layer_steps(output: BertOutput, step: str, row: int, length: int, layers: list[int]) -> Array:
    columns = slice(0, length)
    parts = [cut_step(step, output.traces[layer][step], row, length, columns) for layer in layers]
    return numpy(torch.stack(parts))  # (Nl, …)


def _layer_metrics(chosen: Tensor, length: int) -> HeadMetrics:
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
