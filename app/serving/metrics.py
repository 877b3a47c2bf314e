"""Prometheus metrics: what the service answered, how long it took, and what it turned away.

    attention_http_requests_total{method, route, status}       counter
    attention_http_request_duration_seconds{method, route}     histogram
    attention_http_requests_in_flight                          gauge (live workers, summed)
    attention_rejections_total{reason}                         counter
    attention_queue_wait_seconds                               histogram
    attention_compute_seconds                                  histogram

`route` is the route's template ("/attention", "/static/{path}"), never the raw path, and
"unmatched" for paths no route serves, so that scanners cannot blow up the label set. With
several workers the values live in files under PROMETHEUS_MULTIPROC_DIR (set by `python -m app`)
and /metrics, answered by any worker, adds up all of them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.auth import route_path

if TYPE_CHECKING:  # the runtime counts its own refusals here (count_rejection): no import back
    from app.serving.runtime import Timing

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REJECTION_REASONS = {
    400: "invalid",
    401: "unauthorized",
    413: "too_large",
    415: "invalid",
    422: "invalid",
    429: "overloaded",
    504: "timeout",
}

REQUESTS = Counter(
    "attention_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "attention_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by method and route template",
    ["method", "route"],
    buckets=SECONDS,
)
IN_FLIGHT = Gauge(
    "attention_http_requests_in_flight",
    "HTTP requests being answered now",
    multiprocess_mode="livesum",
)
REJECTIONS = Counter(
    "attention_rejections",
    "Requests refused, by reason: too_large (413), overloaded (429), timeout (504), "
    "unauthorized (401), invalid (400, 415, 422), memory_budget and out_of_memory (503)",
    ["reason"],
)
QUEUE_WAIT = Histogram(
    "attention_queue_wait_seconds",
    "Time a computation waited for a free slot",
    buckets=SECONDS,
)
COMPUTE = Histogram(
    "attention_compute_seconds",
    "Time a computation ran in its thread (model, cutting and encoding), also past a deadline",
    buckets=SECONDS,
)


def observe_timing(timing: Timing) -> None:
    """Admission's hook: called in the computing thread once it has finished."""
    QUEUE_WAIT.observe(timing.queued_s)
    COMPUTE.observe(timing.compute_s)


def count_rejection(reason: str) -> None:
    """A refusal its status does not name: a 503 is a busy memory budget, an allocation that
    failed, or readiness while draining (a probe's answer, not a request turned away)."""
    REJECTIONS.labels(reason).inc()


def observe_response(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in METHODS else "other"
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)
    reason = REJECTION_REASONS.get(status)
    if reason is not None:
        REJECTIONS.labels(reason).inc()


def exposition() -> bytes:
    """The text format of every metric: this process's, or all workers' in multiprocess mode."""
    if MULTIPROC_DIR not in os.environ:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def process_exited() -> None:
    """A worker's live gauges stop counting when it exits (multiprocess mode)."""
    if MULTIPROC_DIR in os.environ:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def route_templates(app: FastAPI) -> list[str]:
    """The paths of the API (from its schema), then the mounts and the other top-level routes."""
    templates = list(app.openapi().get("paths", {}))
    for route in app.routes:
        path = getattr(route, "path", None)
        if isinstance(route, Mount):
            templates.append(f"{route.path}/{{path:path}}")
        elif isinstance(path, str):
            templates.append(path)
    return templates


class RouteTemplates:
    """The route template of a request: the route FastAPI chose (scope["route"]), or, for a
    request answered before routing (401, 413), the first template whose pattern matches."""

    def __init__(self, templates: Callable[[], Iterable[str]]) -> None:
        self._source = templates
        self._patterns: list[tuple[re.Pattern[str], str]] | None = None

    def of(self, scope: Scope, request_path: str) -> str:
        """`request_path`: read before routing, which moves a mount's prefix into root_path."""
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        for pattern, template in self._compiled():
            if pattern.fullmatch(request_path):
                return template
        return "unmatched"

    def _compiled(self) -> list[tuple[re.Pattern[str], str]]:
        if self._patterns is None:
            self._patterns = [(compile_path(t)[0], t) for t in self._source()]
        return self._patterns


class RequestMetrics:
    """Pure ASGI middleware, outermost: counts and times every HTTP response, rejections too."""

    def __init__(self, app: ASGIApp, templates: Callable[[], Iterable[str]]) -> None:
        self.app, self.templates = app, RouteTemplates(templates)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = route_path(scope)
        status: int | None = None

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            status = status or 500  # the server's error middleware answers 500
            raise
        finally:
            IN_FLIGHT.dec()
            if status is not None:  # None: the client left before any answer
                seconds = time.perf_counter() - started
                observe_response(scope["method"], self.templates.of(scope, path), status, seconds)
