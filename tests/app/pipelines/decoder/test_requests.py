"""Requests on a decoder through POST /attention in-process, on a tiny GPT-2 (its tokenizer adds
no special tokens): the prompts it refuses, each a 422 naming the row in words that fit the
family, and the options its generation follows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.app.test_routes_attention import serving
from tests.support.tiny_decoder import write_tiny_decoder

pytest.importorskip("transformers")
pytestmark = pytest.mark.anyio

MODEL = "tiny-gpt2"
POSITIONS = 64  # tests/support/tiny_decoder.py: n_positions
GENERATE = {"max_new_tokens": 2}


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    root = tmp_path_factory.mktemp("models")
    write_tiny_decoder(root / MODEL, "gpt2-tied")
    async with serving(models_dir=str(root)) as (_, client):
        yield client


@pytest.mark.parametrize(
    ("fields", "loc", "message"),
    [
        ({"text": "   "}, ["body", "text", 0], "text[0] has no tokens"),
        ({"text": "   ", "generate": GENERATE}, ["body", "text", 0], "text[0] has no tokens"),
        ({"sequences": [[" "]]}, ["body", "sequences", 0], "sequences[0] has no tokens"),
        ({"text": ["the cat", "  "]}, ["body", "text", 1], "text[1] has no tokens"),
    ],
)
async def test_a_prompt_of_no_tokens_is_a_422_naming_its_row(
    client: httpx.AsyncClient, fields: dict[str, Any], loc: list[str | int], message: str
) -> None:
    response = await client.post("/attention", json={"model": MODEL, **fields})

    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["loc"] == loc
    assert detail["msg"] == message


async def test_a_prompt_too_long_is_refused_with_its_length_and_no_truncation_advice(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/attention", json={"model": MODEL, "text": "the " * 100})

    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", "text", 0]
    assert (
        detail["msg"] == f"text[0] has 100 tokens; this model takes at most {POSITIONS}: shorten it"
    )


async def test_precision_rounds_the_logprobs_of_a_generation_too(client: httpx.AsyncClient) -> None:
    body = {"model": MODEL, "text": "the cat", "generate": GENERATE, "output": {"precision": 2}}
    response = await client.post("/attention", json=body)

    assert response.status_code == 200, response.text
    logprobs = response.json()["results"][0]["generation"]["logprobs"]
    assert len(logprobs) == GENERATE["max_new_tokens"]
    assert all(number == round(number, 2) for number in logprobs)
