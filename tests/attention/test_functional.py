"""The attention math as plain functions: heads, masks, the safe softmax, the fused kernel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import attention.functional as AF
from tests.attention.helpers import NEG_INF, assert_close, generator

F64 = torch.float64
CPU = torch.device("cpu")


def _randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator(0), dtype=F64)


def test_split_then_merge_heads_gives_back_the_input() -> None:
    x = _randn(2, 3, 8)
    heads = AF.split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 2)
    assert torch.equal(heads[:, 1], x[..., 2:4])  # head h holds columns h·d .. (h+1)·d
    assert torch.equal(AF.merge_heads(heads), x)


def test_expanded_kv_head_h_over_group_serves_query_head_h() -> None:
    kv = _randn(2, 2, 3, 4)
    expanded = AF.expand_kv_heads(kv, 6)
    assert expanded.shape == (2, 6, 3, 4)
    for head in range(6):
        assert torch.equal(expanded[:, head], kv[:, head // 3])


def test_expanding_to_as_many_heads_is_the_identity() -> None:
    kv = _randn(1, 4, 3, 2)
    assert AF.expand_kv_heads(kv, 4) is kv


@pytest.mark.parametrize(("length", "source_length"), [(3, 3), (2, 4), (4, 2)])
def test_causal_mask_is_top_left_aligned(length: int, source_length: int) -> None:
    mask = AF.causal_mask(length, source_length, CPU)
    for i in range(length):
        assert mask[i].tolist() == [j > i for j in range(source_length)]


def test_window_mask_blocks_keys_window_or_more_away_on_both_sides() -> None:
    mask = AF.window_mask(4, 4, 2, CPU)
    assert mask.int().tolist() == [[0, 0, 1, 1], [0, 0, 0, 1], [1, 0, 0, 0], [1, 1, 0, 0]]


def test_boolean_mask_becomes_minus_infinity_and_float_mask_stays() -> None:
    blocked = torch.tensor([[True, False]])
    assert AF.mask_to_bias(blocked, F64).tolist() == [[NEG_INF, 0.0]]
    additive = torch.tensor([[-1.5, 2.0]])
    assert AF.mask_to_bias(additive, F64).tolist() == [[-1.5, 2.0]]
    assert AF.mask_to_bias(additive, F64).dtype == F64


def test_masked_softmax_is_softmax_where_a_key_is_visible_and_zero_elsewhere() -> None:
    scores = torch.tensor([[1.0, 2.0, NEG_INF], [NEG_INF, NEG_INF, NEG_INF]], dtype=F64)
    weights, fully_masked = AF.masked_softmax(scores)
    assert fully_masked.tolist() == [False, True]
    assert_close(weights[0], torch.softmax(scores[0], dim=-1), F64)
    assert weights[1].tolist() == [0.0, 0.0, 0.0]


def test_plain_function_returns_both_head_outputs_and_weights() -> None:
    q, k, v = _randn(2, 4, 3, 2), _randn(2, 2, 5, 2), _randn(2, 2, 5, 2)
    output, weights = AF.scaled_dot_product_attention(q, k, v, scale=0.7)
    expected = F.scaled_dot_product_attention(
        q, AF.expand_kv_heads(k, 4), AF.expand_kv_heads(v, 4), scale=0.7
    )
    assert_close(output, expected, F64)
    assert weights.shape == (2, 4, 3, 5)


FULLY_MASKED_SECOND_QUERY = torch.tensor([[0.0, NEG_INF, 0.0], [NEG_INF] * 3], dtype=F64)


def test_fused_kernel_gives_zeros_for_queries_that_see_no_key() -> None:
    q, k, v = _randn(1, 2, 2, 4), _randn(1, 2, 3, 4), _randn(1, 2, 3, 4)
    bias = FULLY_MASKED_SECOND_QUERY
    fast = AF.fast_attention(q, k, v, scale=0.5, bias=bias)
    reference = AF.scaled_dot_product_attention(q, k, v, scale=0.5, bias=bias).output
    assert not fast[..., 1, :].any()
    assert_close(fast, reference, F64)


def test_fused_kernel_that_gives_nan_for_queries_that_see_no_key_is_zeroed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # PyTorch's kernels have differed here across versions and backends: some give NaN
    def nan_kernel(q: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        return torch.full_like(q, float("nan"))

    monkeypatch.setattr(F, "scaled_dot_product_attention", nan_kernel)
    q = _randn(1, 2, 2, 4)
    fast = AF.fast_attention(q, q, q, scale=0.5, bias=FULLY_MASKED_SECOND_QUERY[:, :2])
    assert not fast[..., 1, :].any()
