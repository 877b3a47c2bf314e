"""Rollout, entropy, special-token shares and words, on hand-made and on real attention."""

from __future__ import annotations

import math

import pytest
import torch

from attention.bert import (
    aggregate_words,
    attention_rollout,
    attention_share,
    head_entropy,
    rollout_by_layer,
    row_entropy,
    special_token_shares,
    word_groups,
)
from attention.errors import InputError, ShapeError
from tests.attention.bert.conftest import (
    LoadedBert,
    requires_bundled_model,
    requires_model_libraries,
)

SPLIT_SENTENCE = "Embeddings are unbelievably tokenized!"


def random_attention(layers: int, heads: int, n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(layers, heads, n, n, generator=generator, dtype=torch.float64).softmax(-1)


# -- hand-made attention ------------------------------------------------------------------


def test_rollout_rows_sum_to_one_with_one_row_per_token() -> None:
    attentions = random_attention(6, 12, 9)
    assert attention_rollout(attentions).shape == (9, 9)
    by_layer = rollout_by_layer(attentions)
    assert by_layer.shape == (6, 9, 9)
    assert torch.allclose(by_layer.sum(dim=-1), torch.ones(6, 9, dtype=torch.float64))
    assert torch.equal(by_layer[-1], attention_rollout(attentions))


def test_rollout_averages_heads_adds_identity_and_multiplies_through_layers() -> None:
    attentions = random_attention(2, 3, 4)
    eye = torch.eye(4, dtype=torch.float64)
    first, second = ((layer.mean(dim=0) + eye) / 2 for layer in attentions)
    assert torch.allclose(attention_rollout(attentions), second @ first)
    plain = attentions[1].mean(dim=0) @ attentions[0].mean(dim=0)
    assert torch.allclose(attention_rollout(attentions, residual=False), plain)


def test_entropy_of_a_uniform_row_is_log_n_and_of_a_one_hot_row_zero() -> None:
    assert row_entropy(torch.full((7,), 1 / 7)).item() == pytest.approx(math.log(7))
    assert row_entropy(torch.tensor([0.0, 1.0, 0.0])).item() == 0.0
    uniform = torch.full((2, 3, 5, 5), 1 / 5)
    assert torch.allclose(head_entropy(uniform), torch.full((2, 3), math.log(5)))


def test_attention_share_is_the_mean_over_queries_of_the_weight_on_the_keys() -> None:
    weights = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])[None, None]
    assert attention_share(weights, [0]).item() == pytest.approx((0.5 + 0.1 + 0.3) / 3)
    assert attention_share(weights, [0, 2]).item() == pytest.approx((0.75 + 0.2 + 0.7) / 3)


def test_word_groups_keep_special_tokens_alone_and_pieces_together() -> None:
    assert word_groups([None, 0, 1, 1, 1, 2, None]) == [[0], [1], [2, 3, 4], [5], [6]]


def test_word_attention_sums_what_goes_to_a_word_and_averages_what_comes_from_it() -> None:
    attention = torch.tensor(
        [[0.1, 0.2, 0.7], [0.4, 0.4, 0.2], [0.0, 0.5, 0.5]], dtype=torch.float64
    )  # tokens: a, ##b, c -> words: ab, c
    words = aggregate_words(attention, [[0, 1], [2]])
    expected = [[(0.3 + 0.8) / 2, (0.7 + 0.2) / 2], [0.5, 0.5]]
    assert torch.allclose(words, torch.tensor(expected, dtype=torch.float64))


def test_analysis_refuses_mis_shaped_attention_and_bad_groups() -> None:
    with pytest.raises(ShapeError):
        attention_rollout(torch.ones(3, 4, 4))
    with pytest.raises(InputError):
        aggregate_words(torch.eye(3), [[0, 1], [1, 2]])
    with pytest.raises(InputError):
        attention_share(torch.eye(3)[None, None], [3])


# -- the real model -------------------------------------------------------------------------


@requires_bundled_model
@requires_model_libraries
def test_word_attention_of_a_split_word_on_the_real_model(bert: LoadedBert) -> None:
    batch = bert.tokenizer.encode([SPLIT_SENTENCE])
    assert batch.tokens[0][1:5] == ("em", "##bed", "##ding", "##s")
    groups = batch.word_groups(0)
    assert groups[1] == [1, 2, 3, 4]
    assert batch.group_labels(0) == [
        "[CLS]",
        "Embeddings",
        "are",
        "unbelievably",
        "tokenized",
        "!",
        "[SEP]",
    ]
    with torch.inference_mode():
        output = bert.model(batch.input_ids)
    attention = output.sequence_attentions(0, batch.lengths[0])  # (N, H, n, n)
    words = aggregate_words(attention, groups)  # (N, H, G, G)
    assert words.shape == (6, 12, len(groups), len(groups))
    assert torch.allclose(words.sum(dim=-1), torch.ones(6, 12, len(groups)), atol=1e-5)
    pieces = attention[..., 1:5, :]  # (N, H, 4, n): rows of the four pieces of "Embeddings"
    to_are = pieces[..., 5]  # "are" is one token, at position 5
    assert torch.allclose(words[..., 1, 2], to_are.mean(dim=-1), atol=1e-6)
    to_embeddings = attention[..., 5, 1:5].sum(dim=-1)  # from "are" to all four pieces
    assert torch.allclose(words[..., 2, 1], to_embeddings, atol=1e-6)


@requires_bundled_model
@requires_model_libraries
def test_real_rollout_entropy_and_special_shares_stay_in_range(bert: LoadedBert) -> None:
    batch = bert.tokenizer.encode([SPLIT_SENTENCE, "Hi"])
    with torch.inference_mode():
        output = bert.model(batch.input_ids, key_padding_mask=batch.key_padding_mask)
    short = output.sequence_attentions(1, batch.lengths[1])  # (6, 12, 3, 3): no padding
    assert short.shape == (6, 12, 3, 3)
    rollout = attention_rollout(short)
    assert torch.allclose(rollout.sum(dim=-1), torch.ones(3), atol=1e-5)
    entropy = head_entropy(short)
    assert bool((entropy >= -1e-6).all())
    assert bool((entropy <= math.log(3) + 1e-5).all())
    shares = special_token_shares(short, batch.tokens[1])
    total = shares["[CLS]"] + shares["[SEP]"] + attention_share(short, [1])
    assert torch.allclose(total, torch.ones(6, 12), atol=1e-5)
