"""Pretrained encoders (BERT-format folders): every layer on the project's MultiHeadAttention.

Checks run on the event loop, tokenizing in a thread off it; the estimate covers every layer's
pass and what it keeps; the work runs the layers, cuts each sequence and encodes the answer.
Arrays of a result gain a leading layer axis over the requested `layers`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import torch

from app.http.encoding import Body
from app.http.schemas import AttentionRequest
from app.pipelines import RANDOM_MODEL, Context, Prepared
from app.pipelines.answer import encode_answer
from app.pipelines.encoder.checks import (
    check_pretrained_limits,
    check_pretrained_request,
    resolve_layers,
    tokenize_request,
)
from app.pipelines.encoder.cost import pretrained_estimate
from app.pipelines.encoder.registry import PretrainedRegistry
from app.pipelines.encoder.run import run_pretrained
from app.pipelines.shaping import checked_shapings
from attention import InputError, resolve_dtype
from attention.bert import BertConfig


async def prepare(request: AttentionRequest, context: Context) -> Prepared:
    registry = context.service.pretrained
    require_served(request.model, registry, context.service.decoders.names)
    check_pretrained_request(request, request.model)
    dtype = resolve_dtype(request.config.dtype)
    pretrained = registry.get(torch.float32)
    config = pretrained.info.config
    layers = resolve_layers(request, config.num_hidden_layers)
    # off the event loop: the probes and other requests go on while a long text is tokenized
    batch = await asyncio.to_thread(
        tokenize_request, request, pretrained.tokenizer, may_truncate=True
    )
    estimate = pretrained_estimate(request, batch, config, layers, context.media_type)
    check_pretrained_limits(request, batch, estimate, context.service.settings)
    checked_shapings(request.output, config.num_attention_heads, batch.lengths)

    def work() -> Body:
        model = registry.get(dtype)
        computing = time.perf_counter()
        results = run_pretrained(request, model, batch, layers)
        resolved = resolved_config(request, config, layers)
        return encode_answer(request, results, resolved, context, computing)

    return Prepared(work, estimate)


def require_served(name: str, registry: PretrainedRegistry, decoders: list[str]) -> None:
    if name not in registry.names:
        available = ", ".join([RANDOM_MODEL, *registry.names, *decoders])
        why = f" ({registry.unavailable})" if registry.unavailable else ""
        raise InputError(
            f"model={name!r} is not served here{why}; available: {available}", field="model"
        )


def resolved_config(
    request: AttentionRequest, config: BertConfig, layers: list[int]
) -> dict[str, Any]:
    """The model's fixed configuration, as the random model's answer reports its own."""
    return {
        "model": request.model,
        "num_layers": config.num_hidden_layers,
        "d_model": config.hidden_size,
        "num_heads": config.num_attention_heads,
        **config.attention_config().derived(),
        "layers": layers,
        "dtype": request.config.dtype,
    }
