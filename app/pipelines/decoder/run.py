"""POST /attention with a decoder: run every layer (causal), cut per sequence; with `generate`,
continue the one text and give each new token, its log-probability and its attention.

Per result, arrays gain a leading layer axis over the requested `layers`, as for the encoders.
A new token's attention is the row of the query that chose it over the context before it:
Nl × H × S_i (Nl × S_i averaged over heads), S_i the prompt plus the tokens before it.
"""

from __future__ import annotations

from typing import Any

import torch

from app.http.schemas import AttentionRequest
from app.pipelines.answer import attention_answer, metrics_answer, numpy
from app.pipelines.decoder.cost import weighted_layers
from app.pipelines.encoder.checks import TRACED_STEPS
from app.pipelines.encoder.run import layer_metrics, layer_steps
from app.pipelines.models import Decoder
from attention.bert import TokenizedBatch
from attention.decoder import DecoderOutput
from attention.decoder.generation import Generation, Sampling, generate


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
    chosen = None
    if output.attentions:  # (Nl, H, n, n), padding cut
        chosen = torch.stack([output.attentions[i][row, :, :length, :length] for i in layers])
    tokens = list(batch.tokens[row])
    return {
        "tokens": tokens,
        "key_tokens": tokens,
        "output": numpy(output.hidden_states[-1][row, :length]),
        "attention": attention_answer(chosen, options),
        "layers": layers,
        "steps": {step: layer_steps(output.traces, step, row, length, layers) for step in traced},
        "metrics": None
        if chosen is None or not options.metrics
        else metrics_answer(layer_metrics(chosen, length)),
        "fully_masked_queries": [],
    }


def _generation_answer(
    request: AttentionRequest, decoder: Decoder, generation: Generation, layers: list[int]
) -> dict[str, Any]:
    tokenizer = decoder.tokenizer
    attention = None
    if generation.attentions and generation.attentions[0]:
        attention = [
            attention_answer(torch.stack([rows[i] for i in layers])[:, :, None], request.output)
            for rows in generation.attentions
        ]  # each (Nl, H, 1, S_i) -> per head or averaged; the singleton query axis dropped
        attention = [None if a is None else a.squeeze(-2) for a in attention]
    return {
        "token_ids": generation.token_ids,
        "tokens": [tokenizer.id_token(token) for token in generation.token_ids],
        "text": tokenizer.decode(generation.token_ids),
        "logprobs": generation.logprobs,
        "attention": attention,
        "stop_reason": generation.stop_reason,
    }
