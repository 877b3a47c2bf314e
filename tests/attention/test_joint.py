"""The joint pass: each caller's result is bitwise (torch.equal) what its own call gives."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from attention import AttentionConfig, AttentionModel, AttentionOutput, ShapeError
from attention.joint import joint_self_attention

CONFIGS: dict[str, dict[str, Any]] = {
    "plain": {},
    "causal": {"causal": True},
    "window": {"window": 3},
    "rope": {"positional_encoding": "rope"},
    "alibi": {"positional_encoding": "alibi"},
    "learned": {"positional_encoding": "learned"},
    "bias_kv zero_attn": {"add_bias_kv": True, "add_zero_attn": True},
    "grouped": {"num_kv_heads": 2},
    "no bias": {"bias": False},
    "wide": {"d_model": 256, "num_heads": 8},
    "three heads": {"d_model": 96, "num_heads": 3},
}
# (callers, length): 1-3 rows are where a stacked float32 linear layer rounds differently
SHAPES = [(2, 1), (5, 2), (3, 7), (8, 16), (2, 130)]


# the service joins on the CPU only; on a GPU this says whether it could there too
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU")],
    ),
]


def model_of(fields: dict[str, Any], dtype: torch.dtype, device: str = "cpu") -> AttentionModel:
    config = AttentionConfig(**{"d_model": 64, "num_heads": 4, **fields})
    return AttentionModel(config).to(device=device, dtype=dtype).eval()


def sequences(model: AttentionModel, callers: int, length: int) -> list[torch.Tensor]:
    device = model.tokens.ids.weight.device
    return [
        model.embed_tokens([[f"w{caller}.{position}" for position in range(length)]]).to(device)
        for caller in range(callers)
    ]


def assert_identical(alone: AttentionOutput, joint: AttentionOutput) -> None:
    assert torch.equal(joint.output, alone.output)
    assert alone.weights is not None
    assert joint.weights is not None
    assert torch.equal(joint.weights, alone.weights)
    assert alone.fully_masked is not None
    assert joint.fully_masked is not None
    assert torch.equal(joint.fully_masked, alone.fully_masked)
    assert list(joint.trace) == list(alone.trace)
    for name, tensor in alone.trace.items():
        assert torch.equal(joint.trace[name], tensor), name


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("trace", [False, True], ids=["weights", "every step"])
@pytest.mark.parametrize("name", CONFIGS)
def test_each_caller_gets_exactly_its_own_result(
    name: str, trace: bool, dtype: torch.dtype, threads: int, device: str
) -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = model_of(CONFIGS[name], dtype, device)
        for callers, length in SHAPES:
            inputs = sequences(model, callers, length)
            with torch.inference_mode():
                alone = [model(x, need_weights=True, trace=trace) for x in inputs]
                joint = joint_self_attention(model, inputs, trace=trace)
            assert len(joint) == callers
            for own, joined in zip(alone, joint, strict=True):
                assert_identical(own, joined)
    finally:
        torch.set_num_threads(previous)


def test_stacking_the_whole_pass_would_not_be_exact() -> None:
    """Why the linear layers stay per caller: stacked, float64 rows round differently."""
    model = model_of({}, torch.float64)
    inputs = sequences(model, 5, 7)
    with torch.inference_mode():
        alone = [model(x).output for x in inputs]
        stacked = model(torch.cat(inputs)).output
    assert not all(torch.equal(stacked[i : i + 1], own) for i, own in enumerate(alone))


@pytest.mark.parametrize("lengths", [(4, 5), (4, 4, 3)])
def test_refuses_unequal_lengths(lengths: tuple[int, ...]) -> None:
    model = model_of({}, torch.float32)
    inputs = [model.embed_tokens([[f"w{i}" for i in range(length)]]) for length in lengths]
    with pytest.raises(ShapeError, match="one length"):
        joint_self_attention(model, inputs, trace=False)


def test_refuses_a_caller_with_two_sequences() -> None:
    model = model_of({}, torch.float32)
    pair = model.embed_tokens([["a", "b"], ["c", "d"]])
    with pytest.raises(ShapeError, match="one sequence each"):
        joint_self_attention(model, [pair, pair], trace=False)
