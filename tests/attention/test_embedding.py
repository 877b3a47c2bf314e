"""Token embeddings: hashed string tokens, seeded integer ids, padding and the errors."""

from __future__ import annotations

import pytest
import torch

from attention import InputError
from attention.embedding import TokenEmbedding, TokenVectorCache, hashed_vector, token_vector_bytes
from tests.attention.helpers import generator


def _embedding(cache_bytes: int = 2**20, vocab_size: int = 10) -> TokenEmbedding:
    cache = TokenVectorCache(cache_bytes)
    return TokenEmbedding(8, vocab_size, seed=0, generator=generator(0), cache=cache)


# -- hashed string tokens ------------------------------------------------------------------------


def test_hashed_vector_is_pinned_for_every_process_and_version() -> None:
    # same input, same numbers (docs/architecture.md): "sword" has the same vector everywhere;
    # changing the scheme changes these
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
    assert f"token id {token_id} at sequences.1.{position} is outside" in str(caught.value)
    assert "vocab_size=10" in str(caught.value)
    assert caught.value.field == f"sequences.1.{position}"


@pytest.mark.parametrize("sequence", [["a", 1], [True, False], [1.5]])
def test_mixed_or_foreign_tokens_are_an_input_error(sequence: list[object]) -> None:
    with pytest.raises(InputError, match=r"sequences\.0 mixes strings and integer ids") as caught:
        _embedding()([sequence])
    assert caught.value.field == "sequences.0"


def test_small_cache_evicts_without_changing_any_vector() -> None:
    layer = _embedding(cache_bytes=2 * token_vector_bytes("a", 8))
    tokens = ["a", "b", "c", "d", "a", "b"]
    embedded = layer([tokens])
    assert len(layer.cache) == 2
    assert layer.cache.bytes == 2 * token_vector_bytes("a", 8)
    for position, token in enumerate(tokens):
        assert torch.equal(embedded[0, position], hashed_vector(token, 8, 0).float())


def test_the_cache_is_bounded_in_bytes_whatever_the_tokens() -> None:
    cache = TokenVectorCache(max_bytes=10_000)
    for index in range(200):
        cache.vector(f"token-{index}", 64, seed=index)

        assert cache.bytes <= 10_000
    assert cache.bytes == sum(
        token_vector_bytes(f"token-{i}", 64) for i in range(200 - len(cache), 200)
    )


def test_a_vector_larger_than_the_cache_is_computed_but_not_kept() -> None:
    cache = TokenVectorCache(max_bytes=100)

    vector = cache.vector("sword", 64, seed=0)

    assert torch.equal(vector, hashed_vector("sword", 64, 0))
    assert len(cache) == 0


def test_errors_name_the_field_the_caller_gives() -> None:
    with pytest.raises(InputError) as caught:
        _embedding(vocab_size=5)([[1, 2], [0, 9]], field="key_sequences")

    assert caught.value.field == "key_sequences.1.1"
    assert "token id 9 at key_sequences.1.1 is outside [0, vocab_size=5)" in caught.value.message
