from __future__ import annotations

import time
from typing import Any

import pytest

from app.http.encoding import JSON
from app.http.schemas import AttentionRequest
from app.pipelines import Context
from app.pipelines.random import prepare
from app.service import Service
from app.serving.runtime import Timing
from app.serving.settings import Settings


def request(tokens: int, d_model: int = 16) -> AttentionRequest:
    body: dict[str, Any] = {
        "sequences": [[f"w{index}" for index in range(tokens)]],
        "config": {"d_model": d_model, "num_heads": 2},
    }
    return AttentionRequest.model_validate(body)


@pytest.mark.anyio
async def test_only_a_small_request_for_a_built_module_is_computed_inline() -> None:
    service = Service.from_settings(Settings(inline_max_bytes=64 * 1024))
    try:
        context = Context(service, time.perf_counter(), Timing(), JSON)
        small, large = request(4), request(256)

        first = await prepare(small, context)
        assert not first.inline  # its module is built first: not a small computation
        first.work()  # builds and caches the module
        assert (await prepare(small, context)).inline
        assert not (await prepare(large, context)).inline  # 2·256² weights: over 64 KiB
    finally:
        service.admission.shutdown()


@pytest.mark.anyio
async def test_inline_max_bytes_zero_turns_it_off() -> None:
    service = Service.from_settings(Settings(inline_max_bytes=0))
    try:
        context = Context(service, time.perf_counter(), Timing(), JSON)
        (await prepare(request(4), context)).work()
        assert not (await prepare(request(4), context)).inline
    finally:
        service.admission.shutdown()
