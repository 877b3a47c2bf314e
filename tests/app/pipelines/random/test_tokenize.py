from __future__ import annotations

import pytest

from app.pipelines.random.tokenize import tokenize


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("The man, who passes.", ["The", "man", ",", "who", "passes", "."]),
        ("It's 2 o'clock!", ["It", "'", "s", "2", "o", "'", "clock", "!"]),
        ("a--b", ["a", "-", "-", "b"]),
        ("  spaced\tout\n", ["spaced", "out"]),
        ("snake_case words", ["snake_case", "words"]),
        ("naïve café", ["naïve", "café"]),
    ],
)
def test_words_and_single_punctuation_marks_in_order(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_text_has_no_tokens(text: str) -> None:
    assert tokenize(text) == []
