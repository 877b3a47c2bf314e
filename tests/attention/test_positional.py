"""Positional encodings: sinusoidal and learned tables, rotary (RoPE) and ALiBi."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from attention import AttentionModel, ShapeError, load_pytorch_state_dict
from attention.positional import (
    LearnedPositions,
    SinusoidalPositions,
    alibi_bias,
    alibi_slopes,
    apply_rope,
    sinusoidal_table,
)
from tests.attention.helpers import assert_close, config, generator, inputs, max_abs_diff, module

F64 = torch.float64
CPU = torch.device("cpu")

# -- sinusoidal ----------------------------------------------------------------------------------


@pytest.mark.parametrize("d_model", [6, 7])
def test_sinusoidal_table_follows_the_paper(d_model: int) -> None:
    table = sinusoidal_table(5, d_model, dtype=F64)
    for position in range(5):
        for i in range(d_model):
            angle = position / 10000 ** (2 * (i // 2) / d_model)
            expected = math.sin(angle) if i % 2 == 0 else math.cos(angle)
            assert table[position, i].item() == pytest.approx(expected, abs=1e-12)


def test_sinusoidal_positions_grow_on_demand_and_keep_earlier_rows() -> None:
    positions = SinusoidalPositions(8)
    short = positions(3).clone()
    long = positions(10)
    assert long.shape == (10, 8)
    assert torch.equal(long[:3], short)
    assert torch.equal(positions(4), long[:4])
    assert torch.equal(long, sinusoidal_table(10, 8))


def test_sinusoidal_positions_of_a_float64_module_are_float64_exact() -> None:
    positions = SinusoidalPositions(8).double()
    assert torch.equal(positions(5), sinusoidal_table(5, 8, dtype=F64))


# -- learned -------------------------------------------------------------------------------------


def test_learned_positions_are_a_seeded_table_of_small_vectors() -> None:
    first = LearnedPositions(64, 32, generator(0))
    again = LearnedPositions(64, 32, generator(0))
    assert torch.equal(first.weight, again.weight)
    assert first(5).shape == (5, 32)
    assert float(first.weight.detach().std()) == pytest.approx(0.02, rel=0.1)


def test_sequence_longer_than_max_positions_is_a_shape_error_naming_the_limit() -> None:
    model = AttentionModel(config(positional_encoding="learned", max_positions=4))
    tokens = model.embed_tokens([list("abcdef")])
    with pytest.raises(ShapeError, match=r"6 positions .* max_positions=4") as caught:
        model(tokens)
    assert caught.value.field == "max_positions"


def test_sequence_of_exactly_max_positions_fits() -> None:
    model = AttentionModel(config(positional_encoding="learned", max_positions=4))
    assert model(model.embed_tokens([list("abcd")])).output.shape == (1, 4, 8)


# -- rotary (RoPE) -------------------------------------------------------------------------------


def _rope_scores(q: Tensor, k: Tensor, q_offset: int, k_offset: int) -> Tensor:
    return apply_rope(q, 10000.0, q_offset) @ apply_rope(k, 10000.0, k_offset).transpose(-2, -1)


def _rope_inputs() -> tuple[Tensor, Tensor]:
    draw = generator(0)
    return (
        torch.randn(2, 3, 5, 8, generator=draw, dtype=F64),
        torch.randn(2, 3, 5, 8, generator=draw, dtype=F64),
    )


@pytest.mark.parametrize("shift", [1, 7, 1000])
def test_rope_scores_do_not_change_when_every_position_shifts(shift: int) -> None:
    q, k = _rope_inputs()
    assert_close(_rope_scores(q, k, shift, shift), _rope_scores(q, k, 0, 0), F64)


def test_rope_offset_rotates_as_that_many_earlier_positions_would() -> None:
    q, _ = _rope_inputs()
    earlier = torch.cat([torch.zeros(2, 3, 4, 8, dtype=F64), q], dim=-2)
    assert_close(apply_rope(q, 10000.0, offset=4), apply_rope(earlier, 10000.0)[..., 4:, :], F64)


def test_rope_score_depends_on_the_distance_between_query_and_key_only() -> None:
    q, k = _rope_inputs()
    assert_close(_rope_scores(q, k, 5, 2), _rope_scores(q, k, 3, 0), F64)
    assert_close(_rope_scores(q, k, 2, 5), _rope_scores(q, k, 0, 3), F64)
    assert max_abs_diff(_rope_scores(q, k, 5, 2), _rope_scores(q, k, 0, 0)) > 1e-2


def test_rope_changes_the_scores_it_would_otherwise_give() -> None:
    q, k = _rope_inputs()
    assert max_abs_diff(_rope_scores(q, k, 0, 0), q @ k.transpose(-2, -1)) > 1e-2


def test_rope_is_a_rotation_that_leaves_position_zero_alone() -> None:
    q, _ = _rope_inputs()
    rotated = apply_rope(q, 10000.0)
    assert_close(rotated.norm(dim=-1), q.norm(dim=-1), F64)
    assert torch.equal(rotated[..., 0, :], q[..., 0, :])


def test_rope_rotates_pair_i_and_i_plus_half_by_position_times_frequency() -> None:
    x = torch.zeros(1, 1, 3, 4, dtype=F64)
    x[..., 0] = 1.0  # first dimension of the first pair (0, 2)
    x[..., 1] = 1.0  # first dimension of the second pair (1, 3)
    rotated = apply_rope(x, base=100.0)[0, 0]
    for position in range(3):
        slow = position * 100.0 ** (-2 / 4)  # the second pair's frequency: base^(-2/d)
        expected = [math.cos(position), math.cos(slow), math.sin(position), math.sin(slow)]
        assert rotated[position].tolist() == pytest.approx(expected, abs=1e-12)


def test_module_trace_shows_q_and_k_after_rotation() -> None:
    rope_cfg = config(d_model=8, num_heads=2, positional_encoding="rope")
    rotary, plain = module(rope_cfg), module(rope_cfg.replace(positional_encoding="none"))
    load_pytorch_state_dict(plain, rotary.state_dict())
    x = inputs(rope_cfg, 2, 4, 4)
    rotated = rotary(x.query, x.key, x.value, trace=True).trace
    unrotated = plain(x.query, x.key, x.value, trace=True).trace
    for name in ("q", "k"):
        assert_close(rotated[name], apply_rope(unrotated[name], rope_cfg.rope_base), F64)
    assert torch.equal(rotated["v"], unrotated["v"])


def test_module_with_rope_scores_one_repeated_token_by_distance_only() -> None:
    cfg = config(d_model=8, num_heads=2, positional_encoding="rope")
    token = torch.randn(1, 1, 8, generator=generator(3), dtype=F64)
    scores = module(cfg)(token.expand(1, 6, 8), trace=True).trace["scores"][0]  # (H, L, S)
    for distance in range(-5, 6):
        diagonal = scores.diagonal(offset=distance, dim1=-2, dim2=-1)  # (H, 6 - |distance|)
        assert_close(diagonal, diagonal[:, :1].expand_as(diagonal), F64)


# -- ALiBi ---------------------------------------------------------------------------------------


def paper_slopes(n: int) -> list[float]:
    """The reference implementation published with the ALiBi paper (Press et al. 2022)."""

    def power_of_2(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n).is_integer():
        return power_of_2(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_2(closest) + paper_slopes(2 * closest)[0::2][: n - closest]


def test_alibi_slopes_for_eight_heads_are_one_half_to_one_256th() -> None:
    assert alibi_slopes(8).tolist() == [1 / 2**i for i in range(1, 9)]


def test_alibi_slopes_for_six_heads_interleave_those_of_eight() -> None:
    # four heads: 1/4, 1/16, 1/64, 1/256; then every other slope of eight heads: 1/2, 1/8
    expected = [1 / 4, 1 / 16, 1 / 64, 1 / 256, 1 / 2, 1 / 8]
    assert alibi_slopes(6).tolist() == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("num_heads", range(1, 33))
def test_alibi_slopes_match_the_papers_code(num_heads: int) -> None:
    assert alibi_slopes(num_heads).tolist() == pytest.approx(paper_slopes(num_heads), rel=1e-12)


def test_alibi_bias_is_minus_slope_times_distance() -> None:
    bias = alibi_bias(4, 3, 5, CPU, F64)  # (H, L, S)
    slopes = alibi_slopes(4)
    for head in range(4):
        for i in range(3):
            for j in range(5):
                assert bias[head, i, j].item() == pytest.approx(-slopes[head].item() * abs(i - j))


def test_module_adds_alibi_to_the_scaled_scores_in_masked_scores() -> None:
    cfg = config(d_model=16, num_heads=4, num_kv_heads=2, positional_encoding="alibi")
    x = inputs(cfg, 2, 3, 5)
    trace = module(cfg)(x.query, x.key, x.value, trace=True).trace
    added = trace["masked_scores"] - trace["scaled_scores"]
    assert_close(added, alibi_bias(4, 3, 5, CPU, F64).expand_as(added), F64)
