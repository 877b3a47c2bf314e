"""A padded batch cut into unpadded sequences: columns, every step's layout, metrics."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from attention import STEPS, AttentionOutput
from attention.metrics import head_metrics
from attention.results import KeyColumns, cut_step, key_columns, split_batch

B, H, H_KV, L, S, D, E = 2, 4, 2, 5, 7, 3, 12  # S = 5 keys + bias_k + the zero key


def numbered(*shape: int) -> torch.Tensor:
    return torch.arange(float(np.prod(shape))).reshape(shape)


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
    keys = torch.arange(longest + extra)

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
    name: str, shape: tuple[int, ...], cut: Callable[[torch.Tensor, KeyColumns], torch.Tensor]
) -> None:
    batched = numbered(*shape)
    columns = key_columns(3, 5, 2)  # keys 0, 1, 2 and the extra keys at 5, 6

    part = cut_step(name, batched, row=1, length=3, columns=columns)

    assert torch.equal(part, cut(batched, columns))


def test_cut_step_covers_every_step() -> None:
    for name in STEPS:
        rank = 3 if name in {"token_embeddings", "positional", "inputs", "concat", "output"} else 4
        assert cut_step(name, numbered(*(2,) * rank), 0, 1, slice(0, 1)).numel() > 0


def test_cut_step_refuses_an_unknown_step() -> None:
    with pytest.raises(KeyError):
        cut_step("logits", numbered(1, 1, 1), 0, 1, slice(0, 1))


def test_split_batch_gives_each_sequence_its_unpadded_part_and_metrics() -> None:
    weights = torch.softmax(torch.rand(B, H, L, S), dim=-1)
    fully_masked = torch.zeros(B, H, L, dtype=torch.bool)
    fully_masked[1, 0, 1] = True
    result = AttentionOutput(output=torch.rand(B, L, E), weights=weights,
                             fully_masked=fully_masked,
                             trace={"k": torch.rand(B, H_KV, S, D)})  # fmt: skip

    long, short = split_batch(result, [5, 2], [5, 2], extra_keys=2, steps=["k"], metrics=True)

    assert short.output.shape == (2, E)
    assert short.steps["k"].shape == (H_KV, 4, D)
    own = weights[1, :, :2][..., [0, 1, 5, 6]]
    assert torch.equal(short.weights, own)  # type: ignore[arg-type]
    assert short.fully_masked is not None
    assert short.fully_masked.any(dim=0).nonzero().flatten().tolist() == [1]
    assert short.metrics is not None
    expected = head_metrics(own, 2, fully_masked[1, :, :2])
    assert torch.equal(short.metrics.top_key, expected.top_key)
    assert torch.allclose(short.metrics.entropy, expected.entropy, equal_nan=True)
    assert long.weights is not None
    assert long.weights.shape == (H, 5, 7)
