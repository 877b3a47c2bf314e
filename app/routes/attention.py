"""POST /attention: a request in, every step out, as JSON or MessagePack, whole or streamed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from app.http.answers import AttentionResponse, MessageErrorBody, ValidationErrorBody
from app.http.encoding import (
    FRAME_ENCODINGS,
    JSON,
    MSGPACK,
    MSGPACK_SEQ,
    NDJSON,
    encode_frame,
    frames_encoding,
    negotiate,
)
from app.http.errors import ClientClosed, InvalidRequest, NotAcceptable, UnsupportedMedia
from app.http.schemas import AttentionRequest
from app.pipelines import Context, Prepared, pipeline_for
from app.pipelines.cost import check_text, parsed_body_bytes
from app.pipelines.frames import Frame
from app.service import Service
from app.serving.runtime import Timing
from app.serving.streaming import FrameStream, FrameStreamResponse, Put

router = APIRouter(tags=["attention"])

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": MessageErrorBody, "description": "The body is not valid JSON"},
    401: {"model": MessageErrorBody, "description": "A valid API key is required"},
    413: {
        "model": MessageErrorBody,
        "description": "Over a size limit (body, text, tokens, batch, widths, the estimated "
        "peak memory or answer)",
    },
    406: {
        "model": MessageErrorBody,
        "description": "A stream was asked for (Accept) of a model that does not stream",
    },
    415: {"model": MessageErrorBody, "description": "The body is not application/json"},
    422: {"model": ValidationErrorBody, "description": "Invalid field, shape or configuration"},
    429: {"model": MessageErrorBody, "description": "Overloaded; retry after Retry-After seconds"},
    503: {
        "model": MessageErrorBody,
        "description": "Draining, the memory budget full, or out of memory; retry after "
        "Retry-After seconds",
    },
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
            },
            NDJSON: {
                "schema": {"type": "string"},
                "description": "The answer streamed layer by layer, one JSON object a line: a "
                "head frame, a frame per layer as it is computed, an end frame (or an error "
                "frame); see docs/architecture.md, streaming",
            },
            MSGPACK_SEQ: {
                "schema": {"type": "string", "format": "binary"},
                "description": "The same frames as MessagePack objects back to back",
            },
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
    context = Context(service, started, timing, frames_encoding(media_type))
    prepared = await pipeline_for(attention_request)(attention_request, context)
    held = prepared.estimate.peak_bytes + parsed_body_bytes(len(body))
    if media_type in FRAME_ENCODINGS:
        produce = frame_producer(attention_request, prepared, media_type)
        stream = await FrameStream.start(service.admission, produce, timing, held)
        return FrameStreamResponse(stream, media_type)
    content = await service.batcher.run(prepared.work, timing, held, prepared.inline, prepared.join)
    return Response(content, media_type=media_type)


def frame_producer(
    request: AttentionRequest, prepared: Prepared, media_type: str
) -> Callable[[Put], None]:
    """The pipeline's frames, encoded in its thread as the whole answer would be."""
    frames = prepared.frames
    if frames is None:
        raise NotAcceptable(
            f"model={request.model!r} does not stream its answer; ask for {JSON} or {MSGPACK} "
            f"(Accept), or stream a model that does (the random model, the encoders)"
        )
    options = request.output
    half = options.dtype == "float16"

    def produce(put: Put) -> None:
        def emit(frame: Frame) -> None:
            put(encode_frame(frame, media_type, options.precision, float16=half))

        frames(emit)

    return produce


async def read_json_body(request: Request) -> bytes:
    content_type = request.headers.get("content-type")
    if content_type is not None:
        kind = content_type.split(";")[0].strip().lower()
        if kind != JSON and not kind.endswith("+json"):
            raise UnsupportedMedia(f"content-type {kind!r} is not supported; send {JSON}")
    try:
        return await request.body()
    except ClientDisconnect:  # not the service's fault: no 500, no traceback
        raise ClientClosed("the client closed the connection before its body arrived") from None


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
