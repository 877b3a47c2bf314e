"""Where tensors live and in which precision: device and dtype names, and float64 end to end."""

from __future__ import annotations

import pytest
import torch

from attention import AttentionModel, ConfigError, resolve_device, resolve_dtype
from attention.config import POSITIONAL_ENCODINGS
from tests.attention.helpers import config, max_abs_diff


def test_auto_is_cuda_exactly_when_cuda_is_available() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device().type == expected


@pytest.mark.parametrize(("available", "expected"), [(True, "cuda"), (False, "cpu")])
def test_auto_follows_what_torch_reports(
    monkeypatch: pytest.MonkeyPatch, available: bool, expected: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    assert resolve_device("auto") == torch.device(expected)


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_a_config_error(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA is not available") as caught:
        resolve_device(name)
    assert caught.value.field == "device"


def test_cuda_index_beyond_the_devices_present_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ConfigError, match="device='cuda:1': this machine has 1 CUDA device"):
        resolve_device("cuda:1")


def test_cpu_is_always_there() -> None:
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize(("name", "message"), [("gpu", "is not a device name"), ("meta", "only")])
def test_unknown_or_unsupported_device_is_a_config_error(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        resolve_device(name)
    assert f"device={name!r}" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "dtype"), [("float32", torch.float32), ("float64", torch.float64)]
)
def test_dtype_names_resolve(name: str, dtype: torch.dtype) -> None:
    assert resolve_dtype(name) == dtype


def test_unknown_dtype_is_a_config_error_listing_the_choices() -> None:
    with pytest.raises(ConfigError, match="dtype='float16' is not one of float32, float64"):
        resolve_dtype("float16")


# -- float64 on request --------------------------------------------------------------------------

TOKENS = [["the", "man", "who", "passes"], ["the", "sentence"]]


@pytest.mark.parametrize("encoding", POSITIONAL_ENCODINGS)
def test_float64_model_runs_end_to_end_in_float64(encoding: str) -> None:
    cfg = config(d_model=16, num_heads=4, num_kv_heads=2, causal=True, positional_encoding=encoding)
    model = AttentionModel(cfg).to(torch.float64)
    padding = torch.tensor([[False] * 4, [False, False, True, True]])
    result = model(model.embed_tokens(TOKENS), key_padding_mask=padding, trace=True)
    for name, step in result.trace.items():
        assert step.dtype == torch.float64, name
        assert name == "masked_scores" or bool(torch.isfinite(step).all()), name  # -inf: masked
    fast = model(model.embed_tokens(TOKENS), key_padding_mask=padding, need_weights=False)
    assert max_abs_diff(fast.output, result.output) <= 1e-10


@pytest.mark.parametrize("encoding", POSITIONAL_ENCODINGS)
def test_float64_agrees_with_float32_to_float32_rounding(encoding: str) -> None:
    cfg = config(d_model=16, num_heads=4, positional_encoding=encoding)
    single, double = AttentionModel(cfg), AttentionModel(cfg).to(torch.float64)
    expected = double(double.embed_tokens(TOKENS)).output
    assert max_abs_diff(single(single.embed_tokens(TOKENS)).output, expected) <= 1e-5
