"""Optional API keys: with ATTENTION_API_KEYS set, `Authorization: Bearer <key>` or 401.

Open without a key: the probes (/healthz, /readyz), the explorer page (/ and /static/*) and the
API's description (/openapi.json, /docs and its assets), which hold no data and compute nothing; the
explorer asks its user for the key and sends it. Everything else (/attention, /info, /metrics)
needs a key. A pure ASGI middleware, so that a refused request is answered before its body is
read; keys are compared as SHA-256 digests with `hmac.compare_digest`, against every key, so that
neither the time taken nor an early exit tells a caller how close a guess was.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.http.errors import Unauthorized, json_response

PUBLIC_PATHS = frozenset(
    {"/", "/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect"}
)
PUBLIC_PREFIXES = ("/static/", "/docs/assets/")
SCHEME = "bearerAuth"
MISSING = "a valid API key is required: Authorization: Bearer <key>"
INVALID = "the API key is not valid"


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class KeyCheck:
    """The configured keys, held as digests: equal lengths for compare_digest."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = tuple(_digest(key) for key in keys)

    def accepts(self, key: str) -> bool:
        given = _digest(key)
        found = False
        for digest in self._digests:  # no early exit: every key costs the same
            found |= hmac.compare_digest(given, digest)
        return found


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


class ApiKeyAuth:
    """401 with `WWW-Authenticate: Bearer` for a protected path without a valid key."""

    def __init__(self, app: ASGIApp, keys: Iterable[str]) -> None:
        self.app, self.check = app, KeyCheck(keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(route_path(scope)):
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        if token is not None and self.check.accepts(token):
            await self.app(scope, receive, send)
            return
        error = Unauthorized(MISSING if token is None else INVALID)
        response = json_response(error.status_code, {"detail": error.message}, error.headers)
        await response(scope, receive, send)


def route_path(scope: Scope) -> str:
    """The path that routing sees: without the root_path a proxy may have put before it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def install(app: FastAPI, keys: tuple[str, ...]) -> None:
    """Adds the middleware when keys are configured; without keys, everything is open."""
    if keys:
        app.add_middleware(ApiKeyAuth, keys=keys)


def document(schema: dict[str, Any], keys: tuple[str, ...]) -> None:
    """With keys: the bearer scheme (the docs' Authorize button) and a 401 on protected paths."""
    if not keys:
        return
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "One of the keys in ATTENTION_API_KEYS",
    }
    unauthorized = {
        "description": "A valid API key is required (Authorization: Bearer <key>)",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/MessageErrorBody"}}
        },
    }
    for path, operations in schema.get("paths", {}).items():
        if is_public(path):
            continue
        for operation in operations.values():
            operation["security"] = [{SCHEME: []}]
            operation.setdefault("responses", {}).setdefault("401", unauthorized)
