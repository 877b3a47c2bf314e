"""MultiHeadAttention against torch.nn.MultiheadAttention, and its fast path against its traced one.

PyTorch gives NaN for a query whose keys are all masked; ours gives zeros and flags the query in
`fully_masked`. The comparisons therefore check that both agree on which queries those are, compare
every other number, and check that ours are zero there.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from torch import Tensor, nn

from attention import (
    AttentionConfig,
    MultiHeadAttention,
    PositionalEncoding,
    export_pytorch_state_dict,
    load_pytorch_state_dict,
)
from tests.attention.helpers import (
    as_float_mask,
    assert_close,
    module,
    randomize_,
    reference,
)
from tests.attention.strategies import Case, fast_path_cases, pytorch_cases

BOUNDED = settings(max_examples=60, deadline=None, derandomize=True)


def _assert_matches_reference(
    ours: MultiHeadAttention, ref: nn.MultiheadAttention, case: Case
) -> None:
    x = case.inputs()
    result = case.run(ours, trace=True)
    expected, expected_weights = ref(
        x.query, x.key, x.value,
        key_padding_mask=case.key_padding_mask, attn_mask=case.attn_mask,
        need_weights=True, average_attn_weights=False,
    )  # fmt: skip
    assert result.weights is not None
    assert result.fully_masked is not None
    fully_masked = result.fully_masked  # (B, H, L)
    assert torch.equal(torch.isnan(expected_weights).all(dim=-1), fully_masked)
    assert_close(result.weights[~fully_masked], expected_weights[~fully_masked], case.dtype)
    assert not result.weights[fully_masked].any()
    assert not result.trace["head_outputs"][fully_masked].any()
    rows = ~fully_masked.any(dim=1)  # (B, L): queries that every head could answer
    assert torch.equal(~torch.isnan(expected).any(dim=-1), rows)
    assert_close(result.output[rows], expected[rows], case.dtype)
    assert bool(torch.isfinite(result.output).all())


@BOUNDED
@given(case=pytorch_cases())
def test_exported_weights_give_pytorch_outputs_and_weights(case: Case) -> None:
    ours = module(case.config, case.dtype, seed=case.seed)
    ref = reference(case.config, case.dtype)
    ref.load_state_dict(export_pytorch_state_dict(ours))
    _assert_matches_reference(ours, ref, case)


@BOUNDED
@given(case=pytorch_cases())
def test_pytorch_state_dict_loads_and_gives_the_same_numbers(case: Case) -> None:
    ref = randomize_(reference(case.config, case.dtype), case.seed)
    ours = MultiHeadAttention(case.config).to(case.dtype).eval()
    load_pytorch_state_dict(ours, ref.state_dict())
    _assert_matches_reference(ours, ref, case)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=pytorch_cases(grouped=True))
def test_grouped_query_layer_exports_as_the_equivalent_pytorch_layer(case: Case) -> None:
    ours = module(case.config, case.dtype, seed=case.seed)
    ref = reference(case.config, case.dtype)
    ref.load_state_dict(export_pytorch_state_dict(ours))
    _assert_matches_reference(ours, ref, case)


def _fully_masking_case(kind: str) -> Case:
    """Sequence 1 padded throughout; in sequence 0, head 1's last query blocked from every key."""
    batch, heads, length, source_length = 2, 2, 3, 4
    padding = torch.zeros(batch, source_length, dtype=torch.bool)
    padding[1] = True
    attn_mask = torch.zeros(batch * heads, length, source_length, dtype=torch.bool)
    attn_mask[1, 2] = True  # (b=0, h=1), query 2
    if kind == "float":
        padding, attn_mask = (
            as_float_mask(padding, torch.float64),
            as_float_mask(attn_mask, torch.float64),
        )
    cfg = AttentionConfig(d_model=8, num_heads=heads, positional_encoding="none")
    return Case(cfg, torch.float64, batch, length, source_length, False, padding, attn_mask, seed=5)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_queries_are_zero_where_pytorch_gives_nan(kind: str) -> None:
    case = _fully_masking_case(kind)
    ours = module(case.config, case.dtype, seed=case.seed)
    ref = reference(case.config, case.dtype)
    ref.load_state_dict(export_pytorch_state_dict(ours))
    result = case.run(ours)
    assert result.fully_masked is not None
    assert result.fully_masked.sum() == 2 * 3 + 1  # every query of sequence 1, one of sequence 0
    _assert_matches_reference(ours, ref, case)


# -- the fast path (F.scaled_dot_product_attention) against the traced one ----------------------


def _outputs(case: Case) -> tuple[Tensor, Tensor]:
    """(fast, traced) outputs of one module for one input."""
    layer = module(case.config, case.dtype, seed=case.seed)
    fast, traced = case.run(layer, need_weights=False), case.run(layer, trace=True)
    assert fast.weights is None
    assert not fast.trace
    return fast.output, traced.output


@settings(max_examples=100, deadline=None, derandomize=True)
@given(case=fast_path_cases())
def test_fast_path_equals_traced_path(case: Case) -> None:
    fast, traced = _outputs(case)
    assert bool(torch.isfinite(fast).all())
    assert_close(fast, traced, case.dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("length", "source_length"), [(4, 4), (3, 5), (5, 3)])
@pytest.mark.parametrize("encoding", ["none", "rope"])
def test_bare_causal_mask_takes_the_is_causal_shortcut_and_agrees(
    monkeypatch: pytest.MonkeyPatch,
    dtype: torch.dtype,
    length: int,
    source_length: int,
    encoding: PositionalEncoding,
) -> None:
    calls: list[bool] = []
    fused = F.scaled_dot_product_attention

    def spy(*args: object, is_causal: bool = False, **kwargs: object) -> Tensor:
        calls.append(is_causal)
        output: Tensor = fused(*args, is_causal=is_causal, **kwargs)  # type: ignore[arg-type,misc]
        return output

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    cfg = AttentionConfig(
        d_model=8, num_heads=4, num_kv_heads=2, causal=True, positional_encoding=encoding
    )
    case = Case(cfg, dtype, 2, length, source_length, False, None, None, seed=3)
    fast, traced = _outputs(case)
    assert calls == [True]
    assert_close(fast, traced, dtype)
