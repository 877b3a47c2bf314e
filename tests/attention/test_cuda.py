"""The traced and fast paths on a CUDA GPU against the CPU in float64. Skipped without CUDA.

TF32 is switched off, so float32 on the GPU is IEEE float32 and 1e-4 is room enough for the
different summation orders of the fused kernels.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import Tensor

from attention import AttentionModel, ConfigError, MultiHeadAttention, resolve_device
from tests.attention.helpers import as_float_mask, config, inputs, max_abs_diff, module

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

F64 = torch.float64
CUDA_TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-10}

CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "causal": {"causal": True},  # no mask: the is_causal shortcut of the fused kernel
    "window": {"window": 3},
    "causal window": {"causal": True, "window": 2},
    "alibi": {"positional_encoding": "alibi"},
    "rope causal": {"positional_encoding": "rope", "causal": True},
    "grouped": {"num_kv_heads": 2},
    "multi-query cross": {"num_kv_heads": 1, "kdim": 5, "vdim": 6},
    "bias_kv zero_attn": {"add_bias_kv": True, "add_zero_attn": True, "bias": False},
    "scale": {"scale": 0.1},
}
SIZES = [(7, 7), (5, 9), (9, 5)]  # (L, S), the causal ones also where L != S


@pytest.fixture(autouse=True)
def _ieee_float32() -> Iterator[None]:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _on_gpu(layer: MultiHeadAttention, dtype: torch.dtype) -> MultiHeadAttention:
    return copy.deepcopy(layer).to(device="cuda", dtype=dtype)


def _padding(batch: int, source_length: int) -> Tensor:
    """The last sequence keeps only its first key; the first sequence is padded throughout."""
    mask = torch.zeros(batch, source_length, dtype=torch.bool)
    mask[0] = True
    mask[-1, 1:] = True
    return mask


def _masks(mode: str, batch: int, source_length: int) -> dict[str, Tensor | None]:
    if mode == "none":
        return {"key_padding_mask": None}
    padding = _padding(batch, source_length)
    return {"key_padding_mask": padding if mode == "bool" else as_float_mask(padding, F64)}


def _cuda(masks: dict[str, Tensor | None], dtype: torch.dtype) -> dict[str, Tensor | None]:
    def move(mask: Tensor | None) -> Tensor | None:
        if mask is None:
            return None
        return mask.cuda() if mask.dtype == torch.bool else mask.to("cuda", dtype)

    return {name: move(mask) for name, mask in masks.items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("padding", ["none", "bool", "float"])
@pytest.mark.parametrize(("length", "source_length"), SIZES)
@pytest.mark.parametrize("fields", CASES.values(), ids=CASES.keys())
def test_cuda_traced_and_fast_paths_match_cpu_float64(
    fields: dict[str, Any], length: int, source_length: int, padding: str, dtype: torch.dtype
) -> None:
    cfg = config(d_model=32, num_heads=4, **fields)
    cpu = module(cfg, F64, seed=1)
    x = inputs(cfg, 3, length, source_length, seed=2)
    masks = _masks(padding, 3, source_length)
    expected = cpu(x.query, x.key, x.value, trace=True, **masks)
    gpu = _on_gpu(cpu, dtype)
    args = [t.to("cuda", dtype) for t in (x.query, x.key, x.value)]
    traced = gpu(*args, trace=True, **_cuda(masks, dtype))
    fast = gpu(*args, need_weights=False, **_cuda(masks, dtype))
    tolerance = CUDA_TOLERANCE[dtype]
    assert traced.weights is not None
    assert expected.weights is not None
    assert max_abs_diff(traced.weights.cpu(), expected.weights) <= tolerance
    assert max_abs_diff(traced.output.cpu(), expected.output) <= tolerance
    assert bool(torch.isfinite(fast.output).all())
    assert max_abs_diff(fast.output.cpu(), expected.output) <= tolerance


def test_auto_device_is_cuda_here_and_only_present_indices_resolve() -> None:
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ConfigError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


@pytest.mark.parametrize("encoding", ["sinusoidal", "learned", "rope", "alibi"])
def test_model_on_cuda_embeds_tokens_and_matches_cpu(encoding: str) -> None:
    cfg = config(d_model=32, num_heads=4, positional_encoding=encoding)
    cpu = AttentionModel(cfg).to(F64)
    gpu = copy.deepcopy(cpu).to(device="cuda", dtype=torch.float32)
    sentences = [["the", "man", "who", "passes"], ["the", "sentence", "should", "swing"]]
    expected = cpu(cpu.embed_tokens(sentences), trace=True).output
    tokens = gpu.embed_tokens(sentences)
    assert tokens.device.type == "cuda"
    for options in ({"trace": True}, {"need_weights": False}):
        output = gpu(tokens, **options).output
        assert max_abs_diff(output.cpu(), expected) <= 1e-4
