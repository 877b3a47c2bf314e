"""Properties of multi-head attention that hold for every configuration and input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from torch import Tensor

from attention import AttentionModel, AttentionOutput, MultiHeadAttention
from tests.attention.helpers import assert_close, config, inputs, max_abs_diff, module
from tests.attention.strategies import Case, fast_path_cases

PROPERTIES = settings(max_examples=60, deadline=None, derandomize=True)


def _traced(case: Case) -> dict[str, Tensor]:
    result = case.run(module(case.config, case.dtype, seed=case.seed), trace=True)
    assert result.fully_masked is not None
    return {**result.trace, "fully_masked": result.fully_masked}


@PROPERTIES
@given(case=fast_path_cases())
def test_weights_sum_to_one_over_visible_keys_and_are_zero_elsewhere(case: Case) -> None:
    trace = _traced(case)
    weights, fully_masked = trace["attention"], trace["fully_masked"]
    blocked = torch.isneginf(trace["masked_scores"])
    assert torch.equal(blocked.all(dim=-1), fully_masked)
    assert not weights[blocked].any()
    assert bool((weights >= 0).all())
    sums = weights.sum(dim=-1)
    assert_close(sums[~fully_masked], torch.ones_like(sums[~fully_masked]), case.dtype)
    assert not sums[fully_masked].any()


@PROPERTIES
@given(case=fast_path_cases())
def test_trace_output_equals_untraced_output(case: Case) -> None:
    layer = module(case.config, case.dtype, seed=case.seed)
    traced = case.run(layer, trace=True)
    weighed = case.run(layer, need_weights=True)
    fast = case.run(layer, need_weights=False)
    assert traced.trace["output"] is traced.output
    assert torch.equal(traced.output, weighed.output)
    assert weighed.weights is not None
    assert torch.equal(traced.trace["attention"], weighed.weights)
    assert_close(fast.output, traced.output, case.dtype)


@PROPERTIES
@given(case=fast_path_cases())
def test_nothing_is_ever_nan(case: Case) -> None:
    trace = _traced(case)
    for name in ("attention", "head_outputs", "concat", "output"):
        assert bool(torch.isfinite(trace[name]).all()), name


@pytest.mark.parametrize(("length", "source_length"), [(4, 4), (3, 6), (6, 3)])
def test_causal_weights_are_zero_above_the_diagonal_and_positive_on_and_below(
    length: int, source_length: int
) -> None:
    cfg = config(causal=True)
    x = inputs(cfg, 2, length, source_length)
    weights = module(cfg)(x.query, x.key, x.value).weights
    assert weights is not None
    above = torch.ones(length, source_length, dtype=torch.bool).triu(1)  # top-left aligned
    assert not weights[..., above].any()
    assert bool((weights[..., ~above] > 0).all())


@pytest.mark.parametrize("window", [1, 2, 3])
def test_window_zeroes_weights_at_distance_window_or_more(window: int) -> None:
    cfg = config(window=window)
    length = 6
    x = inputs(cfg, 2, length, length)
    weights = module(cfg)(x.query, x.key, x.value).weights
    assert weights is not None
    positions = torch.arange(length)
    far = (positions[:, None] - positions[None, :]).abs() >= window
    assert not weights[..., far].any()
    assert bool((weights[..., ~far] > 0).all())


def test_window_and_causal_together_see_the_last_window_keys_only() -> None:
    cfg = config(window=2, causal=True)
    x = inputs(cfg, 1, 5, 5)
    weights = module(cfg)(x.query, x.key, x.value).weights
    assert weights is not None
    visible = (weights[0, 0] > 0).int()
    expected = torch.tensor(
        [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 1, 1]]
    )
    assert torch.equal(visible, expected)


# -- tokens: permutation equivariance without positions ---------------------------------------

SENTENCE = ["the", "man", "who", "passes", "the", "sentence", "should", "swing", "the", "sword"]
PERMUTATION = [3, 9, 0, 7, 1, 8, 2, 5, 6, 4]


def _model_output(model: AttentionModel, tokens: list[str]) -> Tensor:
    result: AttentionOutput = model(model.embed_tokens([tokens]))
    return result.output[0]


def test_without_positions_permuting_tokens_permutes_the_output() -> None:
    model = AttentionModel(config(d_model=16, num_heads=4)).double()
    output = _model_output(model, SENTENCE)
    permuted = _model_output(model, [SENTENCE[i] for i in PERMUTATION])
    assert_close(permuted, output[PERMUTATION], torch.float64)


@pytest.mark.parametrize("encoding", ["sinusoidal", "learned", "rope", "alibi"])
def test_with_positions_permuting_tokens_changes_more_than_the_order(encoding: str) -> None:
    model = AttentionModel(config(d_model=16, num_heads=4, positional_encoding=encoding)).double()
    output = _model_output(model, SENTENCE)
    permuted = _model_output(model, [SENTENCE[i] for i in PERMUTATION])
    assert max_abs_diff(permuted, output[PERMUTATION]) > 1e-3


# -- grouped-query attention ------------------------------------------------------------------


def test_as_many_kv_heads_as_query_heads_is_plain_multi_head_attention() -> None:
    plain = AttentionModel(config(d_model=16, num_heads=4, seed=7))
    grouped = AttentionModel(config(d_model=16, num_heads=4, num_kv_heads=4, seed=7))
    tokens = grouped.embed_tokens([SENTENCE])
    assert torch.equal(plain(tokens).output, grouped(tokens).output)


def _multi_query() -> dict[str, Tensor]:
    cfg = config(d_model=16, num_heads=4, num_kv_heads=1)
    x = inputs(cfg, 2, 3, 5)
    result: AttentionOutput = module(cfg)(x.query, x.key, x.value, trace=True)
    return result.trace


def test_multi_query_attention_keeps_one_key_and_value_head() -> None:
    trace = _multi_query()
    assert trace["q"].shape == (2, 4, 3, 4)
    assert trace["k"].shape == (2, 1, 5, 4)
    assert trace["v"].shape == (2, 1, 5, 4)


def test_every_query_head_reads_the_one_key_and_value_head() -> None:
    trace = _multi_query()
    q, k, v = trace["q"], trace["k"][:, 0], trace["v"][:, 0]  # (B, H, L, d), (B, S, d), (B, S, d)
    for head in range(4):
        assert_close(trace["scores"][:, head], q[:, head] @ k.transpose(-2, -1), torch.float64)
        expected = trace["attention"][:, head] @ v
        assert_close(trace["head_outputs"][:, head], expected, torch.float64)


@pytest.mark.parametrize("num_kv_heads", [1, 2])
def test_query_head_h_reads_kv_head_h_over_group(num_kv_heads: int) -> None:
    cfg = config(d_model=16, num_heads=4, num_kv_heads=num_kv_heads)
    x = inputs(cfg, 1, 3, 4)
    trace = module(cfg)(x.query, x.key, x.value, trace=True).trace
    group = 4 // num_kv_heads
    for head in range(4):
        expected = trace["q"][:, head] @ trace["k"][:, head // group].transpose(-2, -1)
        assert_close(trace["scores"][:, head], expected, torch.float64)


# -- queries with no visible key ------------------------------------------------------------


def _all_padded(
    need_weights: bool, trace: bool
) -> tuple[MultiHeadAttention, Tensor, dict[str, Tensor]]:
    cfg = config(d_model=8, num_heads=2)
    layer = module(cfg)
    x = inputs(cfg, 2, 3, 4)
    padding = torch.zeros(2, 4, dtype=torch.bool)
    padding[1] = True  # sequence 1: no key may be seen
    result = layer(
        x.query, x.key, x.value, key_padding_mask=padding, need_weights=need_weights, trace=trace
    )
    steps = dict(result.trace)
    if result.fully_masked is not None:
        steps["fully_masked"] = result.fully_masked
    return layer, result.output, steps


def test_fully_masked_query_gets_zero_weights_and_zero_head_output() -> None:
    _, output, trace = _all_padded(need_weights=True, trace=True)
    assert bool(trace["fully_masked"][1].all())
    assert not trace["fully_masked"][0].any()
    assert not trace["attention"][1].any()
    assert not trace["head_outputs"][1].any()
    assert bool(torch.isfinite(output).all())


@pytest.mark.parametrize("trace", [False, True])
def test_fully_masked_query_outputs_the_output_projection_bias(trace: bool) -> None:
    layer, output, _ = _all_padded(need_weights=trace, trace=trace)
    bias = layer.out_proj.bias
    assert bias is not None
    assert_close(output[1], bias.expand(3, -1), torch.float64)


def test_float_mask_of_minus_infinity_everywhere_is_fully_masked_too() -> None:
    cfg = config()
    x = inputs(cfg, 1, 2, 3)
    attn_mask = torch.zeros(2, 3, dtype=torch.float64)
    attn_mask[1] = float("-inf")
    result = module(cfg)(x.query, x.key, x.value, attn_mask=attn_mask)
    assert result.fully_masked is not None
    assert result.weights is not None
    assert result.fully_masked[0].tolist() == [[False, True], [False, True]]
    assert not result.weights[0, :, 1].any()
