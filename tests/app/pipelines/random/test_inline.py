"""Which random-model requests run on the event loop: small ones, by their whole estimate."""

from __future__ import annotations

from typing import Any

import pytest

from app.http.encoding import JSON
from app.http.schemas import AttentionRequest
from app.main import create_app
from app.pipelines import Context
from app.pipelines import random as random_pipeline
from app.serving.runtime import Timing
from app.serving.settings import Settings

pytestmark = pytest.mark.anyio


async def prepared_inline(body: dict[str, Any]) -> bool:
    service = create_app(Settings(workers=1)).state.service
    request = AttentionRequest.model_validate(body)
    context = Context(service, 0.0, Timing(), JSON)
    first = await random_pipeline.prepare(request, context)
    first.work()  # builds the module: only a cached module runs inline
    again = await random_pipeline.prepare(request, context)
    return again.inline


async def test_a_small_request_runs_inline() -> None:
    assert await prepared_inline({"text": "The man who passes the sentence"})


async def test_a_long_computation_with_a_small_answer_does_not() -> None:
    # 2,048 tokens, 8 heads: the answer (2,048 × 8 numbers) is small, the computation is not
    body = {
        "sequences": [[index % 1024 for index in range(2048)]],
        "config": {"d_model": 8, "num_heads": 8},
        "output": {"attention": "none"},
    }

    assert not await prepared_inline(body)
