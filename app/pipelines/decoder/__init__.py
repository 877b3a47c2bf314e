"""Decoder LLMs (GPT-2, Llama, Mistral, Qwen2) from ATTENTION_MODELS_DIR: every layer on the
project's MultiHeadAttention, causal; with `generate`, a continuation token by token.

The model is loaded on first use off the event loop (app/pipelines/models.py); the checks and
the tokenizing run before the estimate, the estimate before any tensor (docs/reliability.md).
"""

from __future__ import annotations

import time
from typing import Any

from app.http.encoding import Body
from app.http.schemas import AttentionRequest
from app.pipelines import Context, Prepared
from app.pipelines.answer import encode_answer
from app.pipelines.cost import check_estimate
from app.pipelines.decoder.checks import (
    check_decoder_limits,
    check_decoder_request,
)
from app.pipelines.decoder.cost import decoder_estimate
from app.pipelines.decoder.run import run_decoder
from app.pipelines.encoder.checks import resolve_layers, tokenized
from app.pipelines.families import Decoder
from app.pipelines.shaping import checked_shapings

ADVICE = "ask for output.pool or output.top_k, fewer layers, steps, tokens or new tokens"


async def prepare(request: AttentionRequest, context: Context) -> Prepared:
    library = context.service.models
    check_decoder_request(request)
    decoder = await library.loaded(library.decoder, request.model)
    config = decoder.info.config
    layers = resolve_layers(request, config.num_layers)
    batch = await tokenized(request, decoder.tokenizer)
    check_decoder_limits(request, batch, decoder, context.service.settings)
    estimate = decoder_estimate(request, batch, config, layers, context.media_type)
    check_estimate(estimate, context.service.settings, ADVICE)
    checked_shapings(request.output, config.num_heads, batch.lengths)

    def work() -> Body:
        computing = time.perf_counter()
        results = run_decoder(request, decoder, batch, layers)
        return encode_answer(
            request, results, resolved_config(request, decoder, layers), context, computing
        )

    return Prepared(work, estimate)


def resolved_config(
    request: AttentionRequest, decoder: Decoder, layers: list[int]
) -> dict[str, Any]:
    config = decoder.info.config
    return {
        "model": request.model,
        "architecture": config.model_type,
        "num_layers": config.num_layers,
        "d_model": config.hidden_size,
        "num_heads": config.num_heads,
        **config.attention_config(0).derived(),
        "layers": layers,
        "dtype": "float32",
    }
