"""Token embeddings: hashed string tokens, seeded integer ids, padding and the errors."""

from __future__ import annotations

import pytest
import torch

from attention import InputError
from attention.embedding import TokenEmbedding, hashed_vector
from tests.attention.helpers import generator


def _embedding(cache_size: int = 65536, vocab_size: int = 10) -> TokenEmbedding:
    return TokenEmbedding(8, vocab_size, seed=0, generator=generator(0), cache_size=cache_size)


# -- hashed string tokens ------------------------------------------------------------------------


def test_hashed_vector_is_pinned_for_every_process_and_version() -> None:
    # DESIGN.md §3: "sword" has the same vector everywhere; changing the scheme changes these
    expected = [0.22348406778383614, -0.4014145277694561, 2.3439017027974587, -0.5700904038102939]
    assert hashed_vector("sword", 8, 0)[:4].tolist() == pytest.approx(expected, abs=1e-12)


def test_hashed_vector_is_float64_of_the_asked_width() -> None:
    for dim in (1, 7, 8):
        vector = hashed_vector("sword", dim, 0)
        assert vector.shape == (dim,)
        assert vector.dtype == torch.float64


@pytest.mark.parametrize(
    ("token", "dim", "seed"), [("swords", 8, 0), ("Sword", 8, 0), ("sword", 8, 1), ("sword", 10, 0)]
)
def test_hashed_vector_changes_with_token_seed_and_width(token: str, dim: int, seed: int) -> None:
    base = hashed_vector("sword", 8, 0)
    other = hashed_vector(token, dim, seed)
    assert not torch.equal(other[:8], base[: other.shape[0]])


def test_hashed_vectors_are_standard_normal() -> None:
    values = hashed_vector("the", 20000, 0)
    assert abs(float(values.mean())) < 0.03
    assert float(values.std()) == pytest.approx(1.0, abs=0.03)
    assert bool(torch.isfinite(values).all())


def test_unicode_and_empty_tokens_have_vectors() -> None:
    assert not torch.equal(hashed_vector("épée", 8, 0), hashed_vector("", 8, 0))


# -- TokenEmbedding ------------------------------------------------------------------------------


def test_string_tokens_embed_to_their_hashed_vectors_wherever_they_stand() -> None:
    embedded = _embedding()([["the", "sword"], ["sword", "the", "sword"]])
    sword = hashed_vector("sword", 8, 0).float()
    for row, position in [(0, 1), (1, 0), (1, 2)]:
        assert torch.equal(embedded[row, position], sword)


def test_shorter_sequences_are_padded_with_zero_vectors() -> None:
    embedded = _embedding()([["a"], ["a", "b", "c"], []])
    assert embedded.shape == (3, 3, 8)
    assert not embedded[0, 1:].any()
    assert not embedded[2].any()
    assert embedded[1].abs().sum(dim=-1).gt(0).all()


def test_empty_batch_embeds_to_an_empty_tensor() -> None:
    assert _embedding()([]).shape == (0, 0, 8)


def test_integer_ids_index_the_seeded_table() -> None:
    layer = _embedding()
    embedded = layer([[3, 0, 9]])
    assert torch.equal(embedded[0], layer.ids.weight.detach()[[3, 0, 9]])


def test_float64_embedding_keeps_the_hashed_vector_exactly() -> None:
    layer = _embedding().double()
    assert torch.equal(layer([["sword"]])[0, 0], hashed_vector("sword", 8, 0))


@pytest.mark.parametrize(("token_id", "position"), [(10, 2), (-1, 0)])
def test_id_outside_the_vocabulary_is_an_input_error_naming_its_place(
    token_id: int, position: int
) -> None:
    sequence = [1, 2, 3]
    sequence[position] = token_id
    with pytest.raises(InputError) as caught:
        _embedding()([[0], sequence])
    assert f"token id {token_id} at position {position} of sequence 1" in str(caught.value)
    assert "vocab_size=10" in str(caught.value)
    assert caught.value.field == f"sequences.1.{position}"


@pytest.mark.parametrize("sequence", [["a", 1], [True, False], [1.5]])
def test_mixed_or_foreign_tokens_are_an_input_error(sequence: list[object]) -> None:
    with pytest.raises(InputError, match="sequence 0 mixes strings and integer ids") as caught:
        _embedding()([sequence])
    assert caught.value.field == "sequences.0"


def test_small_cache_evicts_without_changing_any_vector() -> None:
    layer = _embedding(cache_size=2)
    tokens = ["a", "b", "c", "d", "a", "b"]
    embedded = layer([tokens])
    assert len(layer._string_cache) == 2
    for position, token in enumerate(tokens):
        assert torch.equal(embedded[0, position], hashed_vector(token, 8, 0).float())
