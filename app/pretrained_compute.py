"""POST /attention with a pretrained model: tokenize, run every layer, cut per sequence.

Per result, arrays gain a leading layer axis over the requested `layers`: attention is
Nl × H × L × L, each step Nl × (its shape in DESIGN.md §1), metrics Nl × H.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from app.errors import TooLarge
from app.limits import ATTENTION_SIZED_STEPS, BYTES_PER_JSON_NUMBER, at_most
from app.pretrained import Pretrained
from app.results import cut_step
from app.schemas import AttentionRequest
from app.settings import Settings
from attention import InputError
from attention.bert import (
    BertOutput,
    TokenizedBatch,
    aggregate_words,
    attention_rollout,
    sentence_embeddings,
    special_token_shares,
)
from attention.metrics import head_metrics

UNSUPPORTED_INPUTS = (
    "embeddings", "key_sequences", "key_embeddings", "value_embeddings", "key_padding_mask",
    "attn_mask", "parameters",
)  # fmt: skip
TRACED_STEPS = (
    "inputs", "q", "k", "v", "scores", "scaled_scores", "masked_scores", "attention",
    "head_outputs", "concat", "output",
)  # fmt: skip
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
    request: AttentionRequest,
    batch: TokenizedBatch,
    heads: int,
    layers: list[int],
    settings: Settings,
) -> None:
    lengths = batch.lengths
    at_most("batch size", len(lengths), settings.max_batch, "max_batch")
    at_most("tokens per sequence", max(lengths), settings.max_tokens, "max_tokens")
    returned = len(ATTENTION_SIZED_STEPS.intersection(request.output.step_names()))
    returned += request.output.attention != "none"
    per_layer = len(lengths) * heads * max(lengths) ** 2
    estimate = per_layer * (len(layers) * returned + 1)
    if estimate > settings.max_work:
        raise TooLarge(
            f"the request needs about {estimate:,} elements (≈ "
            f"{estimate * BYTES_PER_JSON_NUMBER / 1e6:,.0f} MB of JSON), over the limit max_work="
            f"{settings.max_work:,}; ask for fewer layers or steps"
        )


def run_pretrained(
    request: AttentionRequest, pretrained: Pretrained, batch: TokenizedBatch, layers: list[int]
) -> list[dict[str, Any]]:
    device = next(pretrained.model.parameters()).device
    batch = batch.to(device)
    padded = min(batch.lengths) != max(batch.lengths)
    padding = batch.key_padding_mask if padded else None
    traced = [step for step in request.output.step_names() if step in TRACED_STEPS]
    output = pretrained.model(
        batch.input_ids,
        key_padding_mask=padding,
        token_type_ids=batch.token_type_ids,
        output_attentions=True,
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
    every_layer = output.sequence_attentions(row, length)  # (N, H, n, n)
    chosen = every_layer[layers]  # (Nl, H, n, n)
    tokens = list(batch.tokens[row])
    options = request.output
    attention = None
    if options.attention == "per_head":
        attention = _numpy(chosen)
    elif options.attention == "average":
        attention = _numpy(chosen.mean(dim=1))
    return {
        "tokens": tokens,
        "key_tokens": tokens,
        "output": _numpy(output.last_hidden_state[row, :length]),
        "attention": attention,
        "layers": layers,
        "steps": {step: _layer_steps(output, step, row, length, layers) for step in traced},
        "metrics": _layer_metrics(chosen, length) if options.metrics else None,
        "analysis": _analysis(every_layer, chosen, batch, row) if options.analysis else None,
        "embedding": None if pooled is None else pooled[row],
        "fully_masked_queries": [],
    }


def _layer_steps(output: BertOutput, step: str, row: int, length: int, layers: list[int]) -> Array:
    columns = slice(0, length)
    parts = [
        cut_step(step, _numpy(output.traces[layer][step]), row, length, columns) for layer in layers
    ]
    return np.stack(parts)


def _layer_metrics(chosen: Tensor, length: int) -> dict[str, Array]:
    none_masked = torch.zeros(chosen.shape[1], length, dtype=torch.bool, device=chosen.device)
    per_layer = [head_metrics(layer, length, none_masked) for layer in chosen]
    return {
        "entropy": _numpy(torch.stack([metrics.entropy for metrics in per_layer])),
        "mean_distance": _numpy(torch.stack([metrics.mean_distance for metrics in per_layer])),
        "top_key": _numpy(torch.stack([metrics.top_key for metrics in per_layer])),
    }


def _analysis(
    every_layer: Tensor, chosen: Tensor, batch: TokenizedBatch, row: int
) -> dict[str, Any]:
    shares = special_token_shares(chosen, batch.tokens[row])
    return {
        "rollout": _numpy(attention_rollout(every_layer)),
        "special_share": {token: _numpy(share) for token, share in shares.items()},
        "words": batch.group_labels(row),
        "word_attention": _numpy(aggregate_words(chosen, batch.word_groups(row))),
    }


def _numpy(tensor: Tensor) -> Array:
    array: Array = tensor.detach().cpu().numpy()
    return array
