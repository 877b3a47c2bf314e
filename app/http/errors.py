"""HTTP errors of the service, and the one place that turns every error into a response.

    ServiceError                 carries an HTTP status and a message
    ├── InvalidRequest   400     a body that is not JSON
    ├── UnsupportedMedia 415     a body that is not application/json
    ├── TooLarge         413     over a configured limit (body, tokens, batch, work estimate)
    ├── Overloaded       429     no free slot and the wait queue full; carries Retry-After
    ├── Unauthorized     401     a missing or wrong API key
    ├── NotAcceptable    406     a stream (Accept) of a model that does not stream
    ├── NotReady         503     the memory budget held, or out of memory
    └── DeadlineExceeded 504     the computation ran past its deadline

Library errors (attention.AttentionError) and pydantic's become 422 with FastAPI's body shape:
``{"detail": [{"loc": ["body", "config", "num_heads"], "msg": "...", "type": "..."}]}``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.http.schemas import AttentionRequest
from attention import AttentionError

logger = logging.getLogger("app")


class ServiceError(Exception):
    status_code = 500
    headers: dict[str, str] = {}  # noqa: RUF012  # class default, replaced per instance

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if headers:
            self.headers = headers


class InvalidRequest(ServiceError):
    status_code = 400


class Unauthorized(ServiceError):
    status_code = 401

    def __init__(
        self, message: str = "a valid API key is required: Authorization: Bearer <key>"
    ) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class NotAcceptable(ServiceError):
    status_code = 406


class TooLarge(ServiceError):
    status_code = 413


class UnsupportedMedia(ServiceError):
    status_code = 415


class Overloaded(ServiceError):
    status_code = 429


class ClientClosed(ServiceError):
    """The client closed its connection before its request's body had arrived: nothing can be
    answered; 499 (nginx's "client closed request") labels the access log and the metrics."""

    status_code = 499


class NotReady(ServiceError):
    status_code = 503


class DeadlineExceeded(ServiceError):
    status_code = 504


# The library names tensors as the module sees them; clients know the request's fields.
_LIBRARY_FIELDS = {
    "query": ["embeddings"],
    "key": ["key_embeddings"],
    "value": ["value_embeddings"],
    "device": [],
    "dtype": ["config", "dtype"],
}
_CONFIG_FIELD = re.compile(r"^[a-z_]+$")
_PARAMETERS = "parameters."


def library_error_location(field: str | None) -> list[str | int]:
    """'num_heads' -> body.config.num_heads; 'parameters.out_proj.bias' -> body.parameters
    and the key 'out_proj.bias'; 'sequences.1.0' -> body.sequences[1][0]."""
    if field is None:
        return ["body"]
    if field in _LIBRARY_FIELDS:
        return ["body", *_LIBRARY_FIELDS[field]]
    if field.startswith(_PARAMETERS):  # a state-dict key is one name, dots and all
        return ["body", "parameters", field.removeprefix(_PARAMETERS)]
    parts: list[str | int] = [int(part) if part.isdigit() else part for part in field.split(".")]
    top = parts[0]
    if isinstance(top, str) and _CONFIG_FIELD.match(top) and top not in _REQUEST_FIELDS:
        return ["body", "config", *parts]
    return ["body", *parts]


# the request's own fields (truncate, generate, ...) stay top-level; any other name is config's
_REQUEST_FIELDS = frozenset(AttentionRequest.model_fields)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def unprocessable(loc: list[str | int], message: str, kind: str) -> Response:
    return json_response(422, {"detail": [{"loc": loc, "msg": message, "type": kind}]})


def pydantic_error_items(error: ValidationError | RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's shape, with `loc` rooted at "body" and the offending input left out."""
    items = []
    for item in error.errors():
        loc = list(item.get("loc", ()))
        if not loc or loc[0] != "body":
            loc = ["body", *loc]
        message = item["msg"]
        if loc == ["body"] and item["type"] == "model_type":  # null, a list, a number, a string
            message = f"the body must be a JSON object, not {_json_kind(item.get('input'))}"
        items.append({"loc": loc, "msg": message, "type": item["type"]})
    return items


def _json_kind(value: Any) -> str:
    """How JSON names a value's type: null, an array, a number, a string, true or false."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "a number"


def install_error_handlers(app: FastAPI) -> None:
    async def service_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, ServiceError)
        return json_response(error.status_code, {"detail": error.message}, error.headers)

    async def attention_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, AttentionError)
        kind = re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()
        return unprocessable(library_error_location(error.field), error.message, kind)

    async def validation_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, ValidationError | RequestValidationError)
        return json_response(422, {"detail": pydantic_error_items(error)})

    async def http_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        return json_response(error.status_code, {"detail": error.detail}, dict(error.headers or {}))

    async def unexpected(_: Request, error: Exception) -> Response:
        logger.exception("unexpected error", exc_info=error)
        return json_response(500, {"detail": f"internal error: {type(error).__name__}"})

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(AttentionError, attention_error)
    app.add_exception_handler(ValidationError, validation_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
