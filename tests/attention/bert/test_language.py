"""The pretrained model behaves like a language model: meaning and a known kind of head."""

from __future__ import annotations

import pytest
import torch

from attention.bert import embed_texts, offset_argmax_share
from tests.attention.bert.conftest import (
    LoadedBert,
    requires_bundled_model,
    requires_model_libraries,
)

pytestmark = [requires_bundled_model, requires_model_libraries]

SENTENCES = [
    "The man who passes the sentence should swing the sword.",
    "A man is eating food.",
    "The quick brown fox jumps over the lazy dog.",
    "She sold her old car to a neighbour last summer.",
    "Children were playing football in the park near the river.",
    "It rained all day, so we stayed inside and read books.",
]

# Found by measurement on SENTENCES: for every layer and head, the share of queries 1..n-1 whose
# strongest key is the previous token (`offset_argmax_share(attn, -1)`). Layer 0, head 2
# (0-based) scores 1.00 in every sentence, its weight on the previous token is >= 0.998 for
# every query, and [CLS] attends to itself (> 0.9999). No other head's mean share exceeds 0.50
# (layer 0, head 5); the next-token analogue is layer 1, head 8 (mean share 0.71).
PREVIOUS_TOKEN_HEAD = (0, 2)


def test_sentences_about_eating_are_closer_to_each_other_than_to_drumming(
    bert: LoadedBert,
) -> None:
    food, bread, drums = embed_texts(
        bert.model,
        bert.tokenizer,
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "A monkey is playing drums.",
        ],
    )
    # measured: food·bread 0.755, food·drums 0.048, bread·drums 0.036
    assert food @ bread > max(food @ drums, bread @ drums) + 0.5


@pytest.fixture(scope="module")
def attentions(bert: LoadedBert) -> list[torch.Tensor]:
    """Each sentence's (N, H, n, n) attention, run as one padded batch."""
    batch = bert.tokenizer.encode(SENTENCES)
    with torch.inference_mode():
        output = bert.model(batch.input_ids, key_padding_mask=batch.key_padding_mask)
    return [output.sequence_attentions(i, n) for i, n in enumerate(batch.lengths)]


def test_layer_0_head_2_attends_to_the_previous_token(attentions: list[torch.Tensor]) -> None:
    layer, head = PREVIOUS_TOKEN_HEAD
    for attention in attentions:
        weights = attention[layer, head]  # (n, n)
        n = weights.shape[0]
        on_previous = weights[torch.arange(1, n), torch.arange(n - 1)]  # (n - 1,)
        assert on_previous.min().item() > 0.99
        assert offset_argmax_share(attention, -1)[layer, head].item() == 1.0


def test_no_other_head_is_a_previous_token_head(attentions: list[torch.Tensor]) -> None:
    shares = torch.stack([offset_argmax_share(attention, -1) for attention in attentions])
    mean = shares.mean(dim=0)  # (N, H)
    mean[PREVIOUS_TOKEN_HEAD] = 0.0
    assert mean.max().item() < 0.75
