"""BASELINE: a minimal FastAPI + orjson app doing the random model's computation, no features.

    .venv/bin/python -m uvicorn benchmarks.baselines.minimal:app --port 8001 [--workers 2]

POST /attention takes the benchmark cases' bodies (`sequences`, `config.d_model`,
`config.num_heads`, `config.seed`, `output.attention`): the same seeded `AttentionModel` as the
service's, cached per configuration, the per-head weights and outputs at full precision (the
service's default), and orjson straight from numpy. No validation, size limits, cost estimate,
admission, memory budget, deadlines, metrics, security headers or body timeout: what a
hand-written endpoint would be. The computation runs in Starlette's thread pool (as a plain `def`
route would), the same hand-off the service makes to its own pool.
"""

from __future__ import annotations

from typing import Any

import orjson
import torch
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.service import torch_threads
from app.serving.settings import Settings
from attention import AttentionConfig, AttentionModel
from attention.embedding import TokenVectorCache

# the torch threads the service gives one computation on this machine
torch.set_num_threads(torch_threads(Settings()))
app = FastAPI()
_models: dict[tuple[int, int, int], AttentionModel] = {}
_tokens = TokenVectorCache(64 * 1024 * 1024)


def model_for(d_model: int, heads: int, seed: int) -> AttentionModel:
    key = (d_model, heads, seed)
    if key not in _models:
        config = AttentionConfig(d_model=d_model, num_heads=heads, seed=seed)
        _models[key] = AttentionModel(config, _tokens).eval()
    return _models[key]


def compute(body: dict[str, Any]) -> bytes:
    config = body["config"]
    model = model_for(config["d_model"], config["num_heads"], config.get("seed", 0))
    sequences = body["sequences"]
    with torch.inference_mode():
        result = model(model.embed_tokens(sequences), need_weights=True)
        weights = result.weights.numpy() if result.weights is not None else None
        output = result.output.numpy()
    answers = [
        {
            "tokens": tokens,
            "output": output[index],
            "attention": None if weights is None else weights[index],
        }
        for index, tokens in enumerate(sequences)
    ]
    return orjson.dumps({"results": answers}, option=orjson.OPT_SERIALIZE_NUMPY)


@app.post("/attention")
async def attention(request: Request) -> Response:
    body = orjson.loads(await request.body())
    content = await run_in_threadpool(compute, body)
    return Response(content, media_type="application/json")
