"""The service's simple tokenizer: words and single punctuation marks, in order."""

from __future__ import annotations

import re

TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """'The man, who passes.' -> ['The', 'man', ',', 'who', 'passes', '.']"""
    return TOKEN.findall(text)
