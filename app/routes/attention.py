"""POST /attention: a request in, every step out, as JSON or MessagePack."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import torch
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app import __version__
from app.compute import explicit_layer, library_config, run_model
from app.encoding import JSON, MSGPACK, encode, negotiate
from app.errors import InvalidRequest, UnsupportedMedia
from app.labels import request_labels, request_shape
from app.limits import (
    Estimate,
    check_estimate,
    check_limits,
    check_module,
    check_text,
    random_estimate,
)
from app.pretrained import RANDOM_MODEL
from app.pretrained_compute import (
    check_pretrained_limits,
    check_pretrained_request,
    pretrained_estimate,
    resolve_layers,
    run_pretrained,
    tokenize_request,
)
from app.results import cut_results
from app.runtime import Timing
from app.schemas import AttentionRequest, AttentionResponse, MessageErrorBody, ValidationErrorBody
from app.service import Service
from attention import InputError, resolve_dtype

router = APIRouter(tags=["attention"])

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": MessageErrorBody, "description": "The body is not valid JSON"},
    401: {"model": MessageErrorBody, "description": "A valid API key is required"},
    413: {
        "model": MessageErrorBody,
        "description": "Over a size limit (body, tokens, batch, work)",
    },
    415: {"model": MessageErrorBody, "description": "The body is not application/json"},
    422: {"model": ValidationErrorBody, "description": "Invalid field, shape or configuration"},
    429: {"model": MessageErrorBody, "description": "Overloaded; retry after Retry-After seconds"},
    503: {"model": MessageErrorBody, "description": "Draining, or out of memory"},
    504: {"model": MessageErrorBody, "description": "The computation ran past its deadline"},
}
REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/AttentionRequest"}}},
    }
}
SUCCESS_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            MSGPACK: {
                "schema": {"type": "string", "format": "binary"},
                "description": "The same structure; arrays as {dtype, shape, data}",
            }
        }
    }
}


@router.post(
    "/attention",
    response_model=AttentionResponse,
    summary="Run multi-head attention and return outputs, weights and steps",
    responses={**ERROR_RESPONSES, **SUCCESS_CONTENT},
    openapi_extra=REQUEST_BODY,
)
async def post_attention(request: Request) -> Response:
    started = time.perf_counter()
    # read off the app, not through Depends: FastAPI's dependency solving costs more per
    # request (≈ 20–40 µs) than a small request's whole validation
    service: Service = request.app.state.service
    body = await read_json_body(request)
    attention_request = parse_request(body)
    media_type = negotiate(request.headers.get("accept"))
    timing = Timing()
    check_text(attention_request, service.settings)
    if attention_request.model == RANDOM_MODEL:
        work, estimate = prepare_random(attention_request, service, started, timing, media_type)
    else:
        work, estimate = await prepare_pretrained(
            attention_request, service, started, timing, media_type
        )
    content = await service.admission.run(work, timing, estimate.peak_bytes)
    return Response(content, media_type=media_type)


Work = Callable[[], bytes]
RANDOM_ADVICE = (
    "ask for fewer steps, attention 'average' or 'none', MessagePack, a lower precision, or send "
    "fewer or shorter sequences"
)


def prepare_random(
    request: AttentionRequest, service: Service, started: float, timing: Timing, media_type: str
) -> tuple[Work, Estimate]:
    """Checks that need no tensor, on the event loop; the computation for the worker thread."""
    refuse_pretrained_options(request)
    settings = service.settings
    config = library_config(request)
    labels = request_labels(request)
    shape = request_shape(request, labels, config)
    check_limits(request, shape, settings)
    check_module(config, request.config.dtype, settings)
    dtype = resolve_dtype(request.config.dtype)
    cached = (config, dtype) in service.cache
    estimate = random_estimate(request, shape, config, media_type, module_cached=cached)
    check_estimate(estimate, settings, RANDOM_ADVICE)

    def work() -> bytes:
        model = service.cache.get(config, dtype)
        computing = time.perf_counter()
        result = run_model(request, labels, model, explicit_layer(request, model))
        results = cut_results(result, labels, config, request.output)  # copies to the CPU
        resolved = {
            **request.config.model_dump(),
            "num_kv_heads": config.kv_heads,
            "head_dim": config.head_dim,
            "scale": config.resolved_scale,
        }
        meta = response_meta(service, request, started, computing, timing)
        payload = {"results": results, "config": resolved, "meta": meta}
        return encode(payload, media_type, request.output.precision)

    return work, estimate


async def prepare_pretrained(
    request: AttentionRequest, service: Service, started: float, timing: Timing, media_type: str
) -> tuple[Work, Estimate]:
    registry = service.pretrained
    if request.model not in registry.names:
        available = ", ".join([RANDOM_MODEL, *registry.names])
        why = f" ({registry.unavailable})" if registry.unavailable else ""
        raise InputError(
            f"model={request.model!r} is not served here{why}; available: {available}",
            field="model",
        )
    check_pretrained_request(request, request.model)
    dtype = resolve_dtype(request.config.dtype)
    pretrained = registry.get(torch.float32)
    config = pretrained.info.config
    layers = resolve_layers(request, config.num_hidden_layers)
    # off the event loop: the probes and other requests go on while a long text is tokenized
    batch = await asyncio.to_thread(tokenize_request, request, pretrained)
    estimate = pretrained_estimate(request, batch, config, layers, media_type)
    check_pretrained_limits(request, batch, estimate, service.settings)

    def work() -> bytes:
        model = registry.get(dtype)
        computing = time.perf_counter()
        results = run_pretrained(request, model, batch, layers)
        resolved = {
            "model": request.model,
            "num_layers": config.num_hidden_layers,
            "d_model": config.hidden_size,
            "num_heads": config.num_attention_heads,
            "num_kv_heads": config.num_attention_heads,
            "head_dim": config.head_dim,
            "scale": config.head_dim**-0.5,
            "layers": layers,
            "dtype": request.config.dtype,
        }
        meta = response_meta(service, request, started, computing, timing)
        payload = {"results": results, "config": resolved, "meta": meta}
        return encode(payload, media_type, request.output.precision)

    return work, estimate


def refuse_pretrained_options(request: AttentionRequest) -> None:
    fields = request.model_fields_set
    options = request.output
    for name, given in (
        ("layers", "layers" in fields),
        ("output.embedding", options.embedding),
        ("output.analysis", options.analysis),
    ):
        if given:
            raise InputError(
                f"{name} is for pretrained models (GET /models); the random model has one layer",
                field=name,
            )


def response_meta(
    service: Service, request: AttentionRequest, started: float, computing: float, timing: Timing
) -> dict[str, Any]:
    now = time.perf_counter()
    return {
        "device": str(service.device),
        "dtype": request.config.dtype,
        "elapsed_ms": round((now - started) * 1e3, 3),
        "compute_ms": round((now - computing) * 1e3, 3),
        "queue_ms": round(timing.queued_s * 1e3, 3),
        "version": __version__,
        "torch_version": torch.__version__,
    }


async def read_json_body(request: Request) -> bytes:
    content_type = request.headers.get("content-type")
    if content_type is not None:
        kind = content_type.split(";")[0].strip().lower()
        if kind != JSON and not kind.endswith("+json"):
            raise UnsupportedMedia(f"content-type {kind!r} is not supported; send {JSON}")
    return await request.body()


def parse_request(body: bytes) -> AttentionRequest:
    if not body.strip():
        raise InvalidRequest("the body is empty; send a JSON object (see /docs)")
    try:
        return AttentionRequest.model_validate_json(body)
    except ValidationError as error:
        syntax = [item for item in error.errors() if item["type"] == "json_invalid"]
        if syntax:
            raise InvalidRequest(f"the body is not valid JSON: {syntax[0]['msg']}") from None
        raise
