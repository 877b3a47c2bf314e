"""Liveness, readiness and what this instance is: /healthz, /readyz, /info."""

from __future__ import annotations

from typing import Annotated, Any

import torch
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel

from app import __version__
from app.http.answers import MessageErrorBody
from app.http.errors import json_response
from app.service import Service, get_service

router = APIRouter(tags=["operations"])
ServiceDep = Annotated[Service, Depends(get_service)]

LIMIT_SETTINGS = (
    "max_body_bytes", "max_tokens", "max_batch", "max_d_model", "max_heads", "max_text_chars",
    "max_token_chars", "max_request_bytes", "max_response_bytes", "memory_budget_bytes",
    "module_cache_bytes", "token_cache_bytes", "max_concurrency", "max_queue", "request_timeout_s",
    "max_model_bytes", "models_memory_bytes", "max_new_tokens", "max_context_tokens",
)  # fmt: skip
"""Every setting a request can meet as a 413 or a refused model: the working limits, which the
request schema's bounds (absolute caps) name by these keys."""


class Status(BaseModel):
    status: str


@router.get("/healthz", response_model=Status, summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Status,
    summary="Readiness: started and not draining",
    responses={503: {"model": MessageErrorBody, "description": "Starting or draining"}},
)
async def readyz(service: ServiceDep) -> Response:
    if service.ready:
        return json_response(200, {"status": "ready"})
    reason = "draining: shutting down" if service.draining else "starting"
    return json_response(503, {"detail": reason})


@router.get("/info", summary="Versions, device and limits of this instance")
async def info(service: ServiceDep) -> dict[str, Any]:
    settings = service.settings
    return {
        "service": "attention-service",
        "version": __version__,
        "torch_version": torch.__version__,
        "device": str(service.device),
        "cuda_available": torch.cuda.is_available(),
        "limits": {name: getattr(settings, name) for name in LIMIT_SETTINGS},
        "authentication": bool(settings.api_keys),
        "models": service.model_names(),
        "pretrained_unavailable": service.pretrained.unavailable,
        "models_dir_unavailable": service.models.unavailable,
        "workers": settings.workers,
        "torch_threads": torch.get_num_threads(),
        "memory": service.memory_use(),
    }
