"""The service's per-process state: device, admission gate, module cache, readiness."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from fastapi import Request

from app.http import edge
from app.pipelines import RANDOM_MODEL
from app.pipelines.encoder.registry import PretrainedRegistry
from app.pipelines.models import ModelLibrary
from app.serving.batching import Batcher
from app.serving.memory import MemoryBudget, keep_freed_memory
from app.serving.module_cache import ModuleCache
from app.serving.runtime import Admission
from app.serving.settings import Settings
from attention import resolve_device
from attention.embedding import TokenVectorCache


@dataclass
class Service:
    settings: Settings
    device: torch.device
    admission: Admission
    batcher: Batcher
    cache: ModuleCache
    pretrained: PretrainedRegistry
    models: ModelLibrary  # the encoder and decoder folders of ATTENTION_MODELS_DIR
    draining: bool = False
    started: bool = field(default=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Service:
        keep_freed_memory()  # once per process, before the worker threads make their arenas
        device = resolve_device(settings.device)
        admission = Admission(
            settings.max_concurrency,
            settings.max_queue,
            settings.request_timeout_s,
            MemoryBudget(settings.memory_budget_bytes),
        )
        return cls(
            settings=settings,
            device=device,
            admission=admission,
            batcher=Batcher(
                admission,
                settings.batch_wait_ms / 1e3,
                settings.max_request_bytes,
                alone=edge.alone_in_worker,
            ),
            cache=ModuleCache(
                settings.module_cache_bytes, device, TokenVectorCache(settings.token_cache_bytes)
            ),
            pretrained=PretrainedRegistry.from_setting(
                settings.model_path, device, settings.max_model_bytes
            ),
            models=ModelLibrary(
                Path(settings.models_dir) if settings.models_dir else None,
                device,
                budget_bytes=settings.models_memory_bytes,
                max_bytes=settings.max_model_bytes,
            ),
        )

    def memory_use(self) -> dict[str, int]:
        """This worker's bounded memory now, each beside the setting that bounds it."""
        tokens = self.cache.tokens
        return {
            "modules": len(self.cache),
            "module_cache_bytes": self.cache.bytes,
            "token_vectors": len(tokens),
            "token_cache_bytes": tokens.bytes,
            "reserved_bytes": self.admission.memory.reserved,
            "memory_budget_bytes": self.admission.memory.limit,
        }

    def model_names(self) -> list[str]:
        return [RANDOM_MODEL, *self.pretrained.names, *self.models.names]

    @property
    def ready(self) -> bool:
        return self.started and not self.draining


def torch_threads(settings: Settings) -> int:
    """Intra-op threads per computation: the setting, or the cores shared by all the concurrent
    ones, of every worker. More threads than cores makes OpenMP's workers spin against each
    other: on 2 cores, 2 threads per computation served no faster than 1 (docs/performance.md).
    """
    if settings.torch_threads:
        return settings.torch_threads
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    return max(1, cores // (settings.max_concurrency * settings.workers))


async def get_service(request: Request) -> Service:
    """A coroutine on purpose: FastAPI runs a plain-def dependency in its thread pool, a thread
    hop per request, while this is one attribute look-up."""
    service: Service = request.app.state.service
    return service
