"""BASELINE: a hand-rolled FastAPI + transformers server on the service's pretrained weights.

    BASELINE_MODEL_PATH=... .venv/bin/python -m uvicorn \\
        benchmarks.baselines.transformers_server:app --port 8002

POST /attention with `{"sequences": [[word, ...]]}`: the words tokenized as pre-split words,
one eager forward pass of `transformers.AutoModel` with `output_attentions=True` (every layer's
per-head weights, what the service returns with `layers: "all"`), the tokens and the
attentions as orjson from numpy. The computation runs in Starlette's thread pool. No
validation, limits, admission or metrics: what one would write by hand with transformers.
The folder: BASELINE_MODEL_PATH, else the service's bundled all-MiniLM-L6-v2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import torch
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from transformers import AutoModel, AutoTokenizer

from app.service import torch_threads
from app.serving.settings import Settings
from attention.bert import bundled_model_path


def model_folder() -> Path:
    given = os.environ.get("BASELINE_MODEL_PATH")
    folder = Path(given) if given else bundled_model_path()
    if folder is None:
        raise SystemExit("no model: set BASELINE_MODEL_PATH or install the bundled one")
    return folder


torch.set_num_threads(torch_threads(Settings()))  # as the service gives one computation
FOLDER = model_folder()
tokenizer = AutoTokenizer.from_pretrained(FOLDER)
model = AutoModel.from_pretrained(FOLDER, attn_implementation="eager").eval()
app = FastAPI()


def compute(body: dict[str, Any]) -> bytes:
    words = body["sequences"][0]
    encoded = tokenizer(words, is_split_into_words=True, return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**encoded, output_attentions=True)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    attentions = [layer[0].numpy() for layer in outputs.attentions]  # each (H, L, L)
    return orjson.dumps(
        {"tokens": tokens, "attentions": attentions}, option=orjson.OPT_SERIALIZE_NUMPY
    )


@app.post("/attention")
async def attention(request: Request) -> Response:
    body = orjson.loads(await request.body())
    content = await run_in_threadpool(compute, body)
    return Response(content, media_type="application/json")
