"""GET /metrics: the Prometheus text format, of every worker."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.serving.metrics import CONTENT_TYPE, exposition

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics: requests, latency, queue wait, compute, rejections",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics() -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE)
