"""`truncate` through POST /attention in-process, on a tiny BERT folder (32 positions): a text
longer than the model takes is a 422 by default, and with truncate is cut to the model's length,
the answer saying how long it was; the random and decoder families refuse the field by name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.http.schemas import AttentionRequest
from app.pipelines.encoder.checks import tokenize_request
from attention import InputError
from tests.app.test_routes_attention import serving

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        find_spec("safetensors") is None or find_spec("tokenizers") is None,
        reason="safetensors and tokenizers build the tiny model folder",
    ),
]
MODEL = "tiny-bert"
POSITIONS = 32  # tests/support/tiny_bert.py: max_position_embeddings
LONG_TEXT = "the man who swings the sword " * 10
SHORT_TEXT = "the man"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.tiny_bert import write_tiny_bert

    return write_tiny_bert(tmp_path_factory.mktemp("models") / "Tiny-BERT")


@pytest.fixture(scope="module")
def whole_length(folder: Path) -> int:
    """LONG_TEXT's length uncut, by the folder's tokenizer with its truncation switched off."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    length = len(tokenizer.encode(LONG_TEXT).ids)
    assert length > POSITIONS
    return length


@pytest.fixture(scope="module")
async def encoder(folder: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(model_path=str(folder)) as (_, client):
        yield client


def error_item(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    item: dict[str, Any] = response.json()["detail"][0]
    return item


async def test_a_text_too_long_for_the_model_is_422_by_default(
    encoder: httpx.AsyncClient, whole_length: int
) -> None:
    response = await encoder.post("/attention", json={"model": MODEL, "text": LONG_TEXT})

    item = error_item(response)
    assert item["msg"] == (
        f"text[0] has {whole_length} tokens ([CLS] and [SEP] included); this model takes at "
        f"most {POSITIONS}: shorten it or ask for truncation"
    )


async def test_truncate_cuts_to_the_model_length_and_says_how_long_the_text_was(
    encoder: httpx.AsyncClient, whole_length: int
) -> None:
    body = {"model": MODEL, "text": LONG_TEXT, "truncate": True, "layers": [0]}
    response = await encoder.post("/attention", json=body)

    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert len(result["tokens"]) == POSITIONS
    assert result["tokens"][0] == "[CLS]"
    assert result["tokens"][-1] == "[SEP]"
    assert result["truncated"] == {"tokens": whole_length, "kept": POSITIONS}
    assert len(result["attention"][0][0]) == POSITIONS


async def test_truncate_leaves_a_short_text_whole_and_unmarked(
    encoder: httpx.AsyncClient, whole_length: int
) -> None:
    body = {"model": MODEL, "text": [SHORT_TEXT, LONG_TEXT], "truncate": True, "layers": [0]}
    response = await encoder.post("/attention", json=body)

    assert response.status_code == 200, response.text
    short, long = response.json()["results"]
    assert short["truncated"] is None
    assert len(short["tokens"]) == 4  # [CLS] the man [SEP]
    assert long["truncated"] == {"tokens": whole_length, "kept": POSITIONS}


async def test_truncate_cuts_word_sequences_too(
    encoder: httpx.AsyncClient, whole_length: int
) -> None:
    words = LONG_TEXT.split()
    body = {"model": MODEL, "sequences": [words], "truncate": True, "layers": [0]}
    response = await encoder.post("/attention", json=body)

    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["truncated"] == {"tokens": whole_length, "kept": POSITIONS}


async def test_the_random_model_refuses_truncate_by_name(encoder: httpx.AsyncClient) -> None:
    response = await encoder.post("/attention", json={"text": SHORT_TEXT, "truncate": True})

    item = error_item(response)
    assert item["loc"] == ["body", "truncate"]  # a field of the request, not of its config


def test_a_family_that_cannot_cut_refuses_truncate_by_name() -> None:
    request = AttentionRequest.model_validate({"model": "gpt2", "text": "x", "truncate": True})

    with pytest.raises(InputError) as refused:
        tokenize_request(request, tokenizer=None)  # type: ignore[arg-type]  # refused before use
    assert refused.value.field == "truncate"
    assert "encoder" in str(refused.value)
