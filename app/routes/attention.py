"""POST /attention: a request in, every step out, as JSON or MessagePack."""

from __future__ import annotations

import time
from typing import Annotated, Any

import torch
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app import __version__
from app.compute import (
    Labels,
    explicit_layer,
    library_config,
    request_labels,
    request_shape,
    run_model,
)
from app.encoding import JSON, MSGPACK, encode, negotiate
from app.errors import InvalidRequest, UnsupportedMedia
from app.limits import check_limits
from app.results import cut_results
from app.runtime import Timing
from app.schemas import AttentionRequest, AttentionResponse, MessageErrorBody, ValidationErrorBody
from app.service import Service, get_service
from attention import AttentionConfig, resolve_dtype

router = APIRouter(tags=["attention"])
ServiceDep = Annotated[Service, Depends(get_service)]

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
async def post_attention(request: Request, service: ServiceDep) -> Response:
    started = time.perf_counter()
    body = await read_json_body(request)
    attention_request = parse_request(body)
    config = library_config(attention_request)
    labels = request_labels(attention_request)
    check_limits(
        attention_request, request_shape(attention_request, labels, config), service.settings
    )
    media_type = negotiate(request.headers.get("accept"))
    timing = Timing()

    def work() -> bytes:
        return compute_response(
            attention_request, labels, config, service, started, timing, media_type
        )

    content = await service.admission.run(work, timing)
    return Response(content, media_type=media_type)


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


def compute_response(
    request: AttentionRequest,
    labels: Labels,
    config: AttentionConfig,
    service: Service,
    started: float,
    timing: Timing,
    media_type: str,
) -> bytes:
    """Runs in a worker thread: the model, the cut into results, and the encoding."""
    dtype = resolve_dtype(request.config.dtype)
    model = service.cache.get(config, dtype)
    computing = time.perf_counter()
    result = run_model(request, labels, model, explicit_layer(request, model))
    results = cut_results(result, labels, config, request.output)  # copies to the CPU
    compute_ms = (time.perf_counter() - computing) * 1e3
    payload = {
        "results": results,
        "config": {
            **request.config.model_dump(),
            "num_kv_heads": config.kv_heads,
            "head_dim": config.head_dim,
            "scale": config.resolved_scale,
        },
        "meta": {
            "device": str(service.device),
            "dtype": request.config.dtype,
            "elapsed_ms": round((time.perf_counter() - started) * 1e3, 3),
            "compute_ms": round(compute_ms, 3),
            "queue_ms": round(timing.queued_s * 1e3, 3),
            "version": __version__,
            "torch_version": torch.__version__,
        },
    }
    return encode(payload, media_type, request.output.precision)
