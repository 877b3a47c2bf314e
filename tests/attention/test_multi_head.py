"""MultiHeadAttention's calling conventions and the input checks that name what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from attention import InputError, MultiHeadAttention, ShapeError
from tests.attention.helpers import assert_close, config, inputs, module

F64 = torch.float64


def _call(**overrides: Any) -> None:
    """A (B=2, L=3, S=4) cross-attention call of a d_model=8, kdim=5, vdim=6 layer, altered."""
    cfg = config(kdim=5, vdim=6)
    x = inputs(cfg, 2, 3, 4)
    arguments: dict[str, Any] = {"query": x.query, "key": x.key, "value": x.value, **overrides}
    module(cfg)(**arguments)


BAD_SHAPES: list[tuple[str, tuple[int, ...], str, str]] = [
    # (input, its shape, the field named, a fragment of the message)
    ("query", (2, 3, 7), "query", "query has shape (2, 3, 7); expected (batch, length, 8)"),
    ("query", (3, 8), "query", "query has shape (3, 8); expected (batch, length, 8)"),
    ("key", (2, 4, 8), "key", "key has shape (2, 4, 8); expected (batch, length, 5)"),
    ("value", (2, 4, 5), "value", "value has shape (2, 4, 5); expected (batch, length, 6)"),
    ("query", (2, 0, 8), "query", "query has no positions: length 0"),
    ("key", (1, 4, 5), "key", "must share the batch size"),
    ("value", (2, 3, 6), "key", "and key and value the length"),
    ("key_padding_mask", (2, 3), "key_padding_mask", "has shape (2, 3); expected (2, 4)"),
    ("attn_mask", (4, 3), "attn_mask", "has shape (4, 3); expected (3, 4) or (4, 3, 4)"),
    ("attn_mask", (2, 3, 4), "attn_mask", "has shape (2, 3, 4); expected (3, 4) or (4, 3, 4)"),
]


@pytest.mark.parametrize(
    ("name", "shape", "field", "message"), BAD_SHAPES, ids=[m for *_, m in BAD_SHAPES]
)
def test_mis_shaped_input_is_a_shape_error_naming_it_and_both_shapes(
    name: str, shape: tuple[int, ...], field: str, message: str
) -> None:
    dtype = torch.bool if name.endswith("mask") else F64
    with pytest.raises(ShapeError) as caught:
        _call(**{name: torch.zeros(shape, dtype=dtype)})
    assert message in str(caught.value)
    assert caught.value.field == field


BAD_VALUES: list[tuple[str, Tensor, str]] = [
    (
        "attn_mask",
        torch.zeros(3, 4, dtype=torch.int64),
        "attn_mask must be boolean or floating point",
    ),
    ("attn_mask", torch.full((3, 4), float("nan"), dtype=F64), "attn_mask holds NaN or +inf"),
    ("attn_mask", torch.full((3, 4), float("inf"), dtype=F64), "attn_mask holds NaN or +inf"),
    ("key_padding_mask", torch.ones(2, 4, dtype=torch.uint8), "key_padding_mask must be boolean"),
    ("key_padding_mask", torch.full((2, 4), float("nan"), dtype=F64), "key_padding_mask holds NaN"),
]


@pytest.mark.parametrize(("name", "mask", "message"), BAD_VALUES, ids=[m for _, _, m in BAD_VALUES])
def test_mask_of_the_wrong_kind_or_value_is_an_input_error(
    name: str, mask: Tensor, message: str
) -> None:
    with pytest.raises(InputError, match=message.replace("+", r"\+")) as caught:
        _call(**{name: mask})
    assert caught.value.field == name


def test_float_mask_may_hold_minus_infinity_and_finite_values() -> None:
    mask = torch.tensor([[0.0, -1.5, float("-inf"), 2.0]] * 3, dtype=F64)
    _call(attn_mask=mask)


def test_without_key_and_value_it_is_self_attention() -> None:
    layer, x = module(config()), inputs(config(), 2, 3, 3)
    assert torch.equal(layer(x.query).output, layer(x.query, x.query, x.query).output)


def test_key_without_value_uses_the_key_as_value() -> None:
    layer, x = module(config()), inputs(config(), 2, 3, 4)
    assert torch.equal(layer(x.query, x.key).output, layer(x.query, x.key, x.key).output)


def test_packed_self_attention_shortcut_equals_three_separate_projections() -> None:
    layer, x = module(config()), inputs(config(), 2, 3, 3)
    shared = layer(x.query, trace=True).trace
    separate = layer(x.query, x.query.clone(), x.query.clone(), trace=True).trace
    for name in ("q", "k", "v", "output"):
        assert_close(shared[name], separate[name], F64)


@pytest.mark.parametrize("scale", [None, 0.3])
def test_scaled_scores_are_scores_times_the_scale(scale: float | None) -> None:
    cfg = config(d_model=16, num_heads=4, scale=scale)
    x = inputs(cfg, 1, 3, 3)
    trace = module(cfg)(x.query, trace=True).trace
    expected = 0.5 if scale is None else scale  # 1/√head_dim with head_dim 4
    assert torch.equal(trace["scaled_scores"], trace["scores"] * expected)


def test_concat_puts_the_heads_side_by_side() -> None:
    cfg = config(d_model=8, num_heads=2)
    x = inputs(cfg, 1, 3, 3)
    trace = module(cfg)(x.query, trace=True).trace
    heads = trace["head_outputs"]  # (B, H, L, d)
    assert torch.equal(trace["concat"], torch.cat([heads[:, 0], heads[:, 1]], dim=-1))


# -- dropout ---------------------------------------------------------------------------------


def _dropout_layer() -> tuple[MultiHeadAttention, Tensor]:
    cfg = config(d_model=16, num_heads=4, dropout=0.5)
    return module(cfg), inputs(cfg, 2, 6, 6).query


def test_dropout_is_off_in_eval_mode() -> None:
    layer, query = _dropout_layer()
    plain = MultiHeadAttention(config(d_model=16, num_heads=4)).double().eval()
    plain.load_state_dict(layer.state_dict())
    for need_weights in (False, True):
        expected = plain(query, need_weights=need_weights).output
        assert_close(layer(query, need_weights=need_weights).output, expected, F64)


@pytest.mark.parametrize("need_weights", [False, True])
def test_dropout_changes_the_output_in_training_mode(need_weights: bool) -> None:
    layer, query = _dropout_layer()
    evaluated = layer(query, need_weights=need_weights).output
    torch.manual_seed(0)
    trained = layer.train()(query, need_weights=need_weights).output
    assert float((trained - evaluated).detach().abs().max()) > 1e-3


def test_trace_keeps_the_weights_before_dropout() -> None:
    layer, query = _dropout_layer()
    torch.manual_seed(0)
    weights = layer.train()(query, trace=True).trace["attention"]
    assert_close(weights.sum(dim=-1), torch.ones(2, 4, 6, dtype=F64), F64)
