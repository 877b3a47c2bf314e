"""The service on a CUDA device gives the CPU's numbers (run on a lent GPU machine)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.main import create_app
from app.serving.settings import Settings

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

CUDA_TOLERANCE = 1e-4  # float32 on two devices: different kernels, same math
REQUEST: dict[str, Any] = {
    "sequences": [["The", "man", "who", "passes"], ["the", "sentence"]],
    "config": {"d_model": 64, "num_heads": 8, "num_kv_heads": 2, "causal": True},
    "output": {"attention": "per_head", "steps": "all", "metrics": True},
}


def answer(device: str, request: dict[str, Any]) -> dict[str, Any]:
    with TestClient(create_app(Settings(device=device))) as client:
        response = client.post("/attention", json=request)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def as_array(value: Any) -> np.ndarray[Any, Any]:
    return np.array(value, dtype=np.float64)  # null (masked) becomes nan


@pytest.mark.parametrize("positional", ["sinusoidal", "rope", "alibi"])
def test_cuda_answers_equal_cpu_answers(positional: str) -> None:
    request = {**REQUEST, "config": {**REQUEST["config"], "positional_encoding": positional}}
    on_cpu, on_cuda = answer("cpu", request), answer("cuda", request)
    assert on_cuda["meta"]["device"].startswith("cuda")
    for cpu_result, cuda_result in zip(on_cpu["results"], on_cuda["results"], strict=True):
        for name in ("output", "attention"):
            np.testing.assert_allclose(
                as_array(cuda_result[name]), as_array(cpu_result[name]), atol=CUDA_TOLERANCE
            )
        for step, cpu_value in cpu_result["steps"].items():
            np.testing.assert_allclose(
                as_array(cuda_result["steps"][step]), as_array(cpu_value), atol=CUDA_TOLERANCE,
                err_msg=step,
            )  # fmt: skip


def test_cuda_fast_path_equals_cpu_fast_path() -> None:
    request = {**REQUEST, "output": {"attention": "none"}}
    on_cpu, on_cuda = answer("cpu", request), answer("cuda", request)
    for cpu_result, cuda_result in zip(on_cpu["results"], on_cuda["results"], strict=True):
        np.testing.assert_allclose(
            as_array(cuda_result["output"]), as_array(cpu_result["output"]), atol=CUDA_TOLERANCE
        )
