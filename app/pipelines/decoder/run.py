"""POST /attention with a decoder: run every layer (causal), cut per sequence; with `generate`,
continue the one text and give each new token, its log-probability and its attention.

Per result, arrays gain a leading layer axis over the requested `layers`, as for the encoders.
A new token's attention is the row of the query that chose it over the context before it:
Nl × H × S_i (Nl × S_i averaged over heads), S_i the prompt plus the tokens before it.
`output.heads`, `top_k` and `pool` shape the prompt's weights as the encoders' and each new
token's rows as lone queries (app/pipelines/shaping.py: `row_shaping`); `queries` picks prompt
rows only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from app.http.schemas import AttentionRequest, OutputOptions
from app.pipelines.answer import attention_answer, metrics_answer, numpy
from app.pipelines.decoder.cost import weighted_layers
from app.pipelines.encoder.checks import TRACED_STEPS
from app.pipelines.encoder.run import layer_metrics, layer_steps
from app.pipelines.families import Decoder
from app.pipelines.shaping import layers_shaped_fields, row_shaping, shaped_layers
from attention.bert import TokenizedBatch
from attention.decoder import DecoderOutput
from attention.decoder.generation import Generation, Sampling, generate
from attention.shaping import Shaping, shape_weights


def run_decoder(
    request: AttentionRequest, decoder: Decoder, batch: TokenizedBatch, layers: list[int]
) -> list[dict[str, Any]]:
    device = decoder.model.token_embeddings.weight.device
    batch = batch.to(device)
    traced = [step for step in request.output.step_names() if step in TRACED_STEPS]
    weighted = weighted_layers(request, layers)
    trace_layers = layers if traced else []
    if request.generate is not None:
        generation = _generate(request, decoder, batch, weighted, trace_layers)
        result = _sequence_result(request, generation.prompt, batch, 0, layers, traced)
        return [result | {"generation": _generation_answer(request, decoder, generation, layers)}]
    padded = min(batch.lengths) != max(batch.lengths)
    with torch.inference_mode():
        output = decoder.model(
            batch.input_ids,
            key_padding_mask=batch.key_padding_mask if padded else None,
            output_attentions=weighted,
            trace_layers=trace_layers,
        )
    return [
        _sequence_result(request, output, batch, row, layers, traced)
        for row in range(len(batch.lengths))
    ]


def _generate(
    request: AttentionRequest,
    decoder: Decoder,
    batch: TokenizedBatch,
    weighted: list[int],
    trace_layers: list[int],
) -> Generation:
    options = request.generate
    assert options is not None
    sampling = Sampling(
        max_new_tokens=options.max_new_tokens,
        temperature=options.temperature,
        top_k=options.top_k,
        top_p=options.top_p,
        seed=options.seed,
        stop=tuple(options.stop),
    )
    return generate(
        decoder.model,
        batch.input_ids[0, : batch.lengths[0]].tolist(),
        sampling,
        eos_token_ids=decoder.info.config.eos_token_ids,
        decode=decoder.tokenizer.decode,
        attention_layers=weighted,
        trace_layers=trace_layers,
    )


def _sequence_result(
    request: AttentionRequest,
    output: DecoderOutput,
    batch: TokenizedBatch,
    row: int,
    layers: list[int],
    traced: list[str],
) -> dict[str, Any]:
    length = batch.lengths[row]
    options = request.output
    weights = output.attentions  # layer -> (B, H, L, L), for the weighted layers only
    views = [weights[i][row, :, :length, :length] for i in layers] if weights else []
    shaped = bool(views) and options.shapes_attention()
    chosen = None  # (Nl, H, n, n), padding cut: a copy, made only when the dense weights are used
    if views and (options.metrics or not shaped):
        chosen = torch.stack(views)
    tokens = list(batch.tokens[row])
    answer = {
        "tokens": tokens,
        "key_tokens": tokens,
        "output": numpy(output.hidden_states[-1][row, :length]),
        "attention": None if shaped else attention_answer(chosen, options),
        "layers": layers,
        "steps": {step: layer_steps(output.traces, step, row, length, layers) for step in traced},
        "metrics": None
        if chosen is None or not options.metrics
        else metrics_answer(layer_metrics(chosen, length)),
        "fully_masked_queries": [],
    }
    if shaped:  # each layer's weights shaped where they lie (cut, not copied)
        answer.update(shaped_layers(views, options, length))
    return answer


def _generation_answer(
    request: AttentionRequest, decoder: Decoder, generation: Generation, layers: list[int]
) -> dict[str, Any]:
    tokenizer = decoder.tokenizer
    return {
        "token_ids": generation.token_ids,
        "tokens": [tokenizer.id_token(token) for token in generation.token_ids],
        "text": tokenizer.decode(generation.token_ids),
        "logprobs": _rounded(generation.logprobs, request.output.precision),
        **_generated_attention(request.output, generation, layers),
        "stop_reason": generation.stop_reason,
    }


def _rounded(numbers: list[float], precision: int | None) -> list[float]:
    """output.precision for a list of Python floats: the encoder rounds arrays only."""
    return numbers if precision is None else [round(number, precision) for number in numbers]


def _generated_attention(
    options: OutputOptions, generation: Generation, layers: list[int]
) -> dict[str, Any]:
    """Each new token's rows over the context before it, per layer: `attention` (dense, or
    null when top_k or pool replace it), `top_k` and `pool`, each a list with one entry per
    token (null when not asked for)."""
    fields: dict[str, Any] = {"attention": None, "top_k": None, "pool": None}
    if not (generation.attentions and generation.attentions[0]):
        return fields
    per_token = [torch.stack([rows[i] for i in layers]) for rows in generation.attentions]
    shaping = row_shaping(options)  # each token's rows: (Nl, H, S_i)
    if shaping is None:
        fields["attention"] = [numpy(_heads_as_asked(rows, options)) for rows in per_token]
        return fields
    shaped = [_shaped_rows(rows, shaping) for rows in per_token]
    for name in fields:
        if shaped[0][name] is not None:
            fields[name] = [token[name] for token in shaped]
    return fields


def _heads_as_asked(rows: Tensor, options: OutputOptions) -> Tensor:
    return rows.mean(dim=-2) if options.attention == "average" else rows


QUERY_AXIS = {"attention": -2, "keys": -2, "weights": -2, "mass": -1, "max": -2, "mean": -2}
"""Where a shaped field keeps its query axis, dropped for a generated token's single row."""


def _shaped_rows(rows: Tensor, shaping: Shaping) -> dict[str, Any]:
    """One new token's rows (Nl, H, S) shaped as one query of each layer, that query's axis
    dropped: top_k (Nl, H, k) and (Nl, H); pool's max and mean (Nl, H, Nk), key_bounds."""
    shaped = [shape_weights(layer[:, None], shaping) for layer in rows]  # (H, 1, S) each
    fields = layers_shaped_fields(shaped, shaping)
    for name in ("top_k", "pool"):
        if fields[name] is not None:
            fields[name].pop("query_bounds", None)
            fields[name] = {
                part: value.squeeze(QUERY_AXIS[part]) if part in QUERY_AXIS else value
                for part, value in fields[name].items()
            }
    if fields["attention"] is not None:
        fields["attention"] = fields["attention"].squeeze(QUERY_AXIS["attention"])
    return fields
