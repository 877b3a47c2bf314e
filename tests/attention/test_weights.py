"""Weights in the layouts of torch.nn.MultiheadAttention: export, load, and what load refuses."""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from attention import (
    AttentionConfig,
    InputError,
    MultiHeadAttention,
    ParameterError,
    expected_shapes,
    export_pytorch_state_dict,
    load_pytorch_state_dict,
)
from tests.attention.helpers import assert_close, config, inputs, module, randomize_, reference

F64 = torch.float64

LAYOUTS: dict[str, dict[str, Any]] = {
    "packed": {},
    "no bias": {"bias": False},
    "bias_kv and zero_attn": {"add_bias_kv": True, "add_zero_attn": True},
    "separate kdim vdim": {"kdim": 5, "vdim": 3},
    "separate kdim only": {"kdim": 5},
    "grouped packed": {"num_heads": 4, "num_kv_heads": 2},
    "multi-query separate": {"num_heads": 4, "num_kv_heads": 1, "kdim": 5, "vdim": 3},
    "grouped with bias_kv": {"num_heads": 4, "num_kv_heads": 2, "add_bias_kv": True},
}


def _outputs(layer: nn.Module, cfg: AttentionConfig) -> tuple[Tensor, Tensor]:
    """(output, per-head weights) of either module on one fixed input."""
    x = inputs(cfg, 2, 3, 4)
    if isinstance(layer, MultiHeadAttention):
        result = layer(x.query, x.key, x.value)
        assert result.weights is not None
        return result.output, result.weights
    output, weights = layer(x.query, x.key, x.value, average_attn_weights=False)
    return output, weights


@pytest.mark.parametrize("fields", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_export_loads_strictly_into_pytorch_and_gives_the_same_numbers(
    fields: dict[str, Any],
) -> None:
    cfg = config(**fields)
    ours, ref = module(cfg), reference(cfg)
    ref.load_state_dict(export_pytorch_state_dict(ours))  # strict: every key, every shape
    for mine, theirs in zip(_outputs(ours, cfg), _outputs(ref, cfg), strict=True):
        assert_close(mine, theirs, F64)


def test_grouped_export_repeats_each_kv_head_for_its_query_heads() -> None:
    cfg = config(d_model=8, num_heads=4, num_kv_heads=2)  # head_dim 2, groups of 2
    ours = module(cfg)
    exported = export_pytorch_state_dict(ours)
    _, k, v = torch.split(exported["in_proj_weight"], 8)
    _, own_k, own_v = ours.projection_weights()
    for head in range(4):
        rows, own_rows = slice(2 * head, 2 * head + 2), slice(2 * (head // 2), 2 * (head // 2) + 2)
        assert torch.equal(k[rows], own_k[own_rows])
        assert torch.equal(v[rows], own_v[own_rows])


def test_export_is_a_copy_that_does_not_track_the_module() -> None:
    ours = module(config())
    exported = export_pytorch_state_dict(ours)
    exported["out_proj.weight"].zero_()
    assert ours.out_proj.weight.detach().abs().sum() > 0
    assert not any(tensor.requires_grad for tensor in exported.values())


@pytest.mark.parametrize("fields", [f for f in LAYOUTS.values() if "num_kv_heads" not in f])
def test_expected_shapes_are_those_of_the_pytorch_state_dict(fields: dict[str, Any]) -> None:
    cfg = config(**fields)
    theirs = {name: tuple(tensor.shape) for name, tensor in reference(cfg).state_dict().items()}
    assert expected_shapes(MultiHeadAttention(cfg)) == theirs


# -- loading both layouts ----------------------------------------------------------------------


def _separate(packed_state: dict[str, Tensor], sizes: list[int]) -> dict[str, Tensor]:
    """The same weights with in_proj_weight split into q/k/v_proj_weight."""
    state = dict(packed_state)
    q, k, v = torch.split(state.pop("in_proj_weight"), sizes)
    return {**state, "q_proj_weight": q, "k_proj_weight": k, "v_proj_weight": v}


@pytest.mark.parametrize("num_kv_heads", [None, 2, 1])
def test_packed_and_separate_layouts_load_to_the_same_module(num_kv_heads: int | None) -> None:
    cfg = config(d_model=8, num_heads=4, num_kv_heads=num_kv_heads)
    state = module(cfg).state_dict()
    from_packed, from_separate = MultiHeadAttention(cfg).double(), MultiHeadAttention(cfg).double()
    load_pytorch_state_dict(from_packed, state)
    load_pytorch_state_dict(from_separate, _separate(state, [8, cfg.kv_dim, cfg.kv_dim]))
    for name, tensor in from_packed.state_dict().items():
        assert torch.equal(tensor, from_separate.state_dict()[name]), name
    assert torch.equal(_outputs(from_packed, cfg)[0], _outputs(from_separate, cfg)[0])


def test_pytorch_layer_with_separate_weights_loads_as_pytorch_computes() -> None:
    cfg = config(kdim=5, vdim=3)
    ref = randomize_(reference(cfg), seed=4)
    ours = MultiHeadAttention(cfg).double()
    load_pytorch_state_dict(ours, ref.state_dict())
    assert_close(_outputs(ours, cfg)[0], _outputs(ref, cfg)[0], F64)


def test_own_state_dict_round_trips_unchanged() -> None:
    cfg = config(d_model=8, num_heads=4, num_kv_heads=2, add_bias_kv=True, kdim=6)
    source, target = module(cfg), MultiHeadAttention(cfg).double()
    load_pytorch_state_dict(target, source.state_dict())
    for name, tensor in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], tensor), name


def test_load_converts_to_the_module_dtype() -> None:
    cfg = config()
    target = MultiHeadAttention(cfg)  # float32
    load_pytorch_state_dict(target, module(cfg, F64).state_dict())
    assert {tensor.dtype for tensor in target.state_dict().values()} == {torch.float32}


# -- what load refuses ---------------------------------------------------------------------------


def _state(cfg: AttentionConfig) -> dict[str, Tensor]:
    return dict(module(cfg).state_dict())


def _assert_lists_expected(message: str, target: MultiHeadAttention) -> None:
    for name, shape in expected_shapes(target).items():
        assert f"{name} {shape}" in message


def _refused(target: MultiHeadAttention, state: dict[str, Tensor], error: type[Exception]) -> str:
    before = {name: tensor.clone() for name, tensor in target.state_dict().items()}
    with pytest.raises(error) as caught:
        load_pytorch_state_dict(target, state)
    for name, tensor in target.state_dict().items():
        assert torch.equal(tensor, before[name]), f"{name} changed by a refused load"
    return str(caught.value)


def test_missing_key_is_named_and_every_expected_key_listed() -> None:
    cfg, target = config(), MultiHeadAttention(config())
    state = _state(cfg)
    del state["out_proj.bias"]
    message = _refused(target, state, ParameterError)
    assert "missing out_proj.bias" in message
    _assert_lists_expected(message, target)


def test_unexpected_key_is_named() -> None:
    target = MultiHeadAttention(config())
    state = {**_state(config()), "bias_k": torch.zeros(1, 1, 8)}
    message = _refused(target, state, ParameterError)
    assert "unexpected bias_k" in message
    _assert_lists_expected(message, target)


def test_both_layouts_at_once_are_unexpected_keys() -> None:
    state = _state(config())
    state.update(_separate(state, [8, 8, 8]))
    message = _refused(MultiHeadAttention(config()), state, ParameterError)
    assert "unexpected k_proj_weight, q_proj_weight, v_proj_weight" in message


def test_wrong_shape_names_the_key_and_both_shapes() -> None:
    target = MultiHeadAttention(config())
    state = {**_state(config()), "in_proj_weight": torch.zeros(24, 7)}
    message = _refused(target, state, ParameterError)
    assert "parameters.in_proj_weight has shape (24, 7); expected (24, 8)" in message
    _assert_lists_expected(message, target)


def test_full_head_weights_do_not_fit_a_grouped_layer() -> None:
    target = MultiHeadAttention(config(d_model=8, num_heads=4, num_kv_heads=1))
    message = _refused(target, _state(config(d_model=8, num_heads=4)), ParameterError)
    assert "in_proj_weight has shape (24, 8); expected (12, 8)" in message


def test_separate_weights_of_the_wrong_width_cannot_be_packed() -> None:
    state = _separate(_state(config()), [8, 8, 8])
    state["k_proj_weight"] = torch.zeros(8, 5)
    message = _refused(MultiHeadAttention(config()), state, ParameterError)
    assert "k_proj_weight has shape (8, 5); packing it needs 8 columns" in message


def test_packed_weights_do_not_fit_a_cross_attention_layer() -> None:
    target = MultiHeadAttention(config(kdim=5, vdim=3))
    message = _refused(target, _state(config()), ParameterError)
    assert "parameters.k_proj_weight has shape (8, 8); expected (8, 5)" in message


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weight_is_an_input_error_naming_the_key(bad: float) -> None:
    state = _state(config())
    state["out_proj.weight"] = state["out_proj.weight"].clone()
    state["out_proj.weight"][0, 0] = bad
    target = MultiHeadAttention(config())
    message = _refused(target, state, InputError)
    assert re.search(r"parameters\.out_proj\.weight holds NaN or infinite values", message)


def test_errors_name_the_offending_parameter_in_field() -> None:
    state = _state(config())
    del state["in_proj_bias"]
    with pytest.raises(ParameterError) as caught:
        load_pytorch_state_dict(MultiHeadAttention(config()), state)
    assert caught.value.field == "parameters.in_proj_bias"
