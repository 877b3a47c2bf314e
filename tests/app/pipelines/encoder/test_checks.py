"""Tokenizing a request: short inputs on the event loop, long ones in a thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from app.http.schemas import AttentionRequest
from app.pipelines.encoder import checks
from app.pipelines.encoder.checks import INLINE_TOKENIZE_CHARS, input_characters, tokenized


def request(**fields: Any) -> AttentionRequest:
    return AttentionRequest.model_validate({"model": "m", **fields})


@pytest.mark.parametrize(
    ("fields", "characters"),
    [
        ({"text": "the man"}, 7),
        ({"text": ["ab", "cde"]}, 5),
        ({"sequences": [["the", "man"], ["who"]]}, 9),
    ],
)
def test_input_characters_count_text_and_words(fields: dict[str, Any], characters: int) -> None:
    assert input_characters(request(**fields)) == characters


@pytest.mark.parametrize(
    ("text", "inline"),
    [("a" * INLINE_TOKENIZE_CHARS, True), ("a" * (INLINE_TOKENIZE_CHARS + 1), False)],
)
def test_a_long_input_is_tokenized_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch, text: str, inline: bool
) -> None:
    threads: list[int] = []

    def record(*_: Any, **__: Any) -> str:
        threads.append(threading.get_ident())
        return "tokens"

    monkeypatch.setattr(checks, "tokenize_request", record)

    async def run() -> int:
        assert await tokenized(request(text=text), tokenizer=None) == "tokens"  # type: ignore[arg-type, comparison-overlap]
        return threading.get_ident()

    loop_thread = asyncio.run(run())
    assert (threads == [loop_thread]) is inline
