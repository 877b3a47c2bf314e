"""Our encoder against HuggingFace transformers and sentence-transformers, on the same folder.

transformers and sentence-transformers are test-only references, imported inside the fixtures
with the hub switched off: they read the bundled folder and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.util import find_spec
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from attention.bert import embed_texts
from tests.attention.bert.conftest import (
    LoadedBert,
    requires_bundled_model,
    requires_model_libraries,
)
from tests.support.huggingface import hub_offline, reference_bert

pytestmark = [
    requires_bundled_model,
    requires_model_libraries,
    pytest.mark.skipif(
        find_spec("transformers") is None or find_spec("sentence_transformers") is None,
        reason="the parity references transformers and sentence-transformers are not "
        "installed: pip install 'attention-service[dev]'",
    ),
]

TOLERANCE = 1e-4
SENTENCES = [
    "The man who passes the sentence should swing the sword.",
    "Hello world",
    "Embeddings are unbelievably tokenized!",
    "A man is eating a piece of bread.",
]


@pytest.fixture(scope="module")
def offline() -> Iterator[None]:
    """The hub stays off for the whole module: nothing may be downloaded."""
    with hub_offline():
        yield


@pytest.fixture(scope="module")
def reference(bert: LoadedBert, offline: None) -> Any:
    return reference_bert(bert.path)


@pytest.fixture(scope="module")
def sentence_transformer(bert: LoadedBert, offline: None) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(bert.path), device="cpu")


@pytest.mark.parametrize(
    "texts",
    [SENTENCES[:1], SENTENCES],
    ids=["one sentence", "padded batch of four lengths"],
)
def test_every_layer_and_head_matches_transformers(
    bert: LoadedBert, reference: Any, texts: list[str]
) -> None:
    batch = bert.tokenizer.encode(texts)
    with torch.inference_mode():
        ours = bert.model(batch.input_ids, key_padding_mask=batch.key_padding_mask)
        theirs = reference(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask.long(),
            output_attentions=True,
        )
    assert len(ours.attentions) == len(theirs.attentions) == 6
    for index, n in enumerate(batch.lengths):  # real tokens only: padded queries are not compared
        hidden_error = (
            ours.last_hidden_state[index, :n] - theirs.last_hidden_state[index, :n]
        ).abs()
        assert hidden_error.max().item() <= TOLERANCE
        for layer, (mine, hf) in enumerate(zip(ours.attentions, theirs.attentions, strict=True)):
            error = (mine[index, :, :n, :n] - hf[index, :, :n, :n]).abs().max().item()
            assert error <= TOLERANCE, f"sequence {index}, layer {layer}: {error}"


def test_pooled_embedding_matches_sentence_transformers(
    bert: LoadedBert, sentence_transformer: Any
) -> None:
    expected = sentence_transformer.encode(SENTENCES, convert_to_tensor=True)
    pooled = embed_texts(bert.model, bert.tokenizer, SENTENCES)
    cosine = F.cosine_similarity(pooled, expected.to(pooled.dtype), dim=-1)
    assert cosine.min().item() >= 0.99999
    assert torch.allclose(pooled.norm(dim=-1), torch.ones(len(SENTENCES)))
