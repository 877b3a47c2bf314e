from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from app.labels import Labels
from app.results import cut_results, cut_step, key_columns
from app.schemas import OutputOptions
from attention import STEPS, AttentionConfig, AttentionOutput

Array = np.ndarray[Any, Any]
B, H, H_KV, L, S, D, E = 2, 4, 2, 5, 7, 3, 12  # S = 5 keys + bias_k + the zero key


def numbered(*shape: int) -> Array:
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


@pytest.mark.parametrize(
    ("length", "longest", "extra", "columns"),
    [
        (5, 5, 0, [0, 1, 2, 3, 4]),
        (5, 5, 2, [0, 1, 2, 3, 4, 5, 6]),
        (3, 5, 0, [0, 1, 2]),
        (3, 5, 1, [0, 1, 2, 5]),
        (1, 5, 2, [0, 5, 6]),
    ],
)
def test_key_columns_are_the_sequences_own_keys_then_the_extra_keys(
    length: int, longest: int, extra: int, columns: list[int]
) -> None:
    keys = np.arange(longest + extra)

    assert keys[key_columns(length, longest, extra)].tolist() == columns


def test_a_full_length_sequence_takes_a_slice_not_a_copy() -> None:
    assert key_columns(4, 4, 1) == slice(0, 5)


@pytest.mark.parametrize(
    ("name", "shape", "cut"),
    [
        ("token_embeddings", (B, L, E), lambda a, c: a[1, :3]),
        ("positional", (B, L, E), lambda a, c: a[1, :3]),
        ("inputs", (B, L, E), lambda a, c: a[1, :3]),
        ("concat", (B, L, E), lambda a, c: a[1, :3]),
        ("output", (B, L, E), lambda a, c: a[1, :3]),
        ("q", (B, H, L, D), lambda a, c: a[1, :, :3]),
        ("head_outputs", (B, H, L, D), lambda a, c: a[1, :, :3]),
        ("k", (B, H_KV, S, D), lambda a, c: a[1][:, c]),
        ("v", (B, H_KV, S, D), lambda a, c: a[1][:, c]),
        ("scores", (B, H, L, S), lambda a, c: a[1, :, :3][..., c]),
        ("scaled_scores", (B, H, L, S), lambda a, c: a[1, :, :3][..., c]),
        ("masked_scores", (B, H, L, S), lambda a, c: a[1, :, :3][..., c]),
        ("attention", (B, H, L, S), lambda a, c: a[1, :, :3][..., c]),
    ],
)
def test_cut_step_takes_one_sequences_queries_and_keys(
    name: str, shape: tuple[int, ...], cut: Callable[[Array, slice | Array], Array]
) -> None:
    batched = numbered(*shape)
    columns = key_columns(3, 5, 2)  # keys 0, 1, 2 and the extra keys at 5, 6

    part = cut_step(name, batched, row=1, length=3, columns=columns)

    np.testing.assert_array_equal(part, cut(batched, columns))


def test_cut_step_covers_every_step() -> None:
    for name in STEPS:
        rank = 3 if name in {"token_embeddings", "positional", "inputs", "concat", "output"} else 4
        assert cut_step(name, numbered(*(2,) * rank), 0, 1, slice(0, 1)).size > 0


def test_cut_step_refuses_an_unknown_step() -> None:
    with pytest.raises(KeyError):
        cut_step("logits", numbered(1, 1, 1), 0, 1, slice(0, 1))


def test_cut_results_gives_each_sequence_its_unpadded_part() -> None:
    config = AttentionConfig(d_model=E, num_heads=H, num_kv_heads=H_KV, add_bias_kv=True,
                             add_zero_attn=True)  # fmt: skip
    labels = Labels(queries=[list("abcde"), list("fg")], keys=[list("abcde"), list("fg")])
    weights = torch.rand(B, H, L, S)
    fully_masked = torch.zeros(B, H, L, dtype=torch.bool)
    fully_masked[1, 0, 1] = True
    result = AttentionOutput(output=torch.rand(B, L, E), weights=weights,
                             fully_masked=fully_masked,
                             trace={"k": torch.rand(B, H_KV, S, D)})  # fmt: skip

    results = cut_results(result, labels, config, OutputOptions(steps=["k"], attention="average"))

    short = results[1]
    assert short["tokens"] == ["f", "g"]
    assert short["key_tokens"] == ["f", "g", "<bias_k>", "<zero_attn>"]
    assert short["output"].shape == (2, E)
    assert short["steps"]["k"].shape == (H_KV, 4, D)
    own = weights[1, :, :2][..., [0, 1, 5, 6]].numpy()
    np.testing.assert_allclose(short["attention"], own.mean(axis=0))
    assert short["fully_masked_queries"] == [1]
    assert results[0]["fully_masked_queries"] == []
    assert results[0]["metrics"] is None
