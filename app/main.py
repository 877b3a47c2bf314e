"""create_app(): assembles the service; nothing here computes anything."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.http import auth
from app.http.compression import Compression
from app.http.errors import install_error_handlers
from app.http.middleware import BodyReadTimeout, BodySizeLimit, ResponseHeaders
from app.http.schemas import AttentionRequest
from app.routes import attention, docs, health, models, steps
from app.routes import metrics as metrics_route
from app.service import Service, torch_threads
from app.serving import metrics
from app.serving.settings import Settings, get_settings
from app.serving.shutdown import drain_on_sigterm

STATIC = Path(__file__).parent / "static"
GIL_SWITCH_INTERVAL_S = 0.001
logger = logging.getLogger("app")

DESCRIPTION = """Multi-head attention, every step observable: send token sequences, text or
vectors and a head configuration; get the outputs, the per-head attention weights and, on
request, every intermediate step, aligned with the tokens."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Attention service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from the service itself (app/routes/docs.py), not a CDN
        redoc_url=None,
    )
    app.state.service = Service.from_settings(settings)
    app.state.service.admission.on_finished = metrics.observe_timing
    install_error_handlers(app)
    app.include_router(attention.router)
    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(steps.router)
    app.include_router(metrics_route.router)
    mount_explorer(app)
    docs.mount_docs(app)
    # middleware, innermost first: compression (answers and static files, as negotiated), body
    # limit, body deadline, API keys, CORS (answers preflights), metrics, response headers (on
    # every answer, refusals included)
    app.add_middleware(Compression)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyReadTimeout, timeout_s=settings.body_timeout_s)
    auth.install(app, settings.api_keys)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
        )
    app.add_middleware(metrics.RequestMetrics, templates=lambda: metrics.route_templates(app))
    service: Service = app.state.service
    app.add_middleware(ResponseHeaders, draining=lambda: service.draining)
    app.openapi = lambda: openapi_schema(app)  # type: ignore[method-assign]
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    service: Service = app.state.service
    torch.set_num_threads(torch_threads(service.settings))
    # the event loop (probes, parsing, every other request) asks for the GIL between the
    # computing threads' Python steps; Python's 5 ms switch interval made it wait up to 5 ms
    # for each of the many times it needs the GIL to answer (docs/reliability.md, the soak)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    restore = drain_on_sigterm(service)
    await asyncio.to_thread(service.pretrained.preload)  # ready only once the model is loaded
    service.started = True
    try:
        yield
    finally:
        service.draining = True
        restore()
        service.admission.shutdown()
        metrics.process_exited()


def mount_explorer(app: FastAPI) -> None:
    """The explorer page at / and its assets at /static/."""
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")

    @app.get("/", include_in_schema=False)
    async def explorer() -> FileResponse:
        return FileResponse(STATIC / "index.html")


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, plus the request model that /attention parses itself (for speed)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    request_schema = AttentionRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(request_schema.pop("$defs", {}))
    components["AttentionRequest"] = request_schema
    auth.document(schema, app.state.service.settings.api_keys)
    app.openapi_schema = schema
    return schema


app = create_app()
