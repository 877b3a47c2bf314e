"""`parameters` in PyTorch's layout reproduce torch.nn.MultiheadAttention over HTTP.

The reference is `nn.MultiheadAttention(batch_first=True)` called with need_weights=True and
average_attn_weights=False; the service gets its state dict as nested lists and the same inputs
as `embeddings` with positional_encoding 'none', so the module sees exactly what PyTorch sees.
Masks always leave each query a visible key: PyTorch answers NaN where ours answers zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from torch import Tensor, nn

from attention import AttentionConfig, AttentionModel, export_pytorch_state_dict
from tests.integration.api import array, attend

pytestmark = pytest.mark.integration

PARITY_TOLERANCE = 1e-5
"""Largest absolute difference from PyTorch, both computing in float32."""


@dataclass(frozen=True)
class Case:
    d_model: int = 8
    num_heads: int = 2
    bias: bool = True
    add_bias_kv: bool = False
    add_zero_attn: bool = False
    kdim: int | None = None
    vdim: int | None = None
    cross: bool = False  # keys and values from their own tensors
    batch: int = 2
    length: int = 3
    source_length: int = 3
    key_padding_mask: bool = False
    attn_mask: str | None = None  # "bool" or "float"
    seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def is_cross(self) -> bool:
        return self.cross or self.kdim is not None or self.vdim is not None


CASES = {
    "packed": Case(),
    "no_bias": Case(bias=False),
    "add_bias_kv": Case(add_bias_kv=True),
    "add_zero_attn": Case(add_zero_attn=True),
    "bias_kv_and_zero_attn": Case(add_bias_kv=True, add_zero_attn=True, num_heads=4, d_model=16),
    "cross_packed": Case(cross=True, length=2, source_length=5),
    "kdim_vdim": Case(kdim=5, vdim=7, length=4, source_length=6),
    "kdim_vdim_no_bias_extra_keys": Case(
        kdim=6, vdim=3, bias=False, add_bias_kv=True, add_zero_attn=True, source_length=4
    ),
    "key_padding_mask": Case(key_padding_mask=True, length=4, source_length=4),
    "bool_attn_mask": Case(attn_mask="bool", length=4, source_length=4),
    "float_attn_mask": Case(attn_mask="float", length=4, source_length=4),
    "both_masks_cross_extra_keys": Case(
        kdim=4,
        vdim=4,
        add_bias_kv=True,
        add_zero_attn=True,
        key_padding_mask=True,
        attn_mask="bool",
        length=3,
        source_length=5,
    ),
    "cross_padding_and_float_mask": Case(
        cross=True, key_padding_mask=True, attn_mask="float", source_length=5
    ),
}


@dataclass
class Reference:
    module: nn.MultiheadAttention
    query: Tensor
    key: Tensor
    value: Tensor
    key_padding_mask: Tensor | None
    attn_mask: Tensor | None


def build_reference(case: Case) -> Reference:
    draw = torch.Generator().manual_seed(case.seed)
    module = nn.MultiheadAttention(
        case.d_model, case.num_heads, bias=case.bias, add_bias_kv=case.add_bias_kv,
        add_zero_attn=case.add_zero_attn, kdim=case.kdim, vdim=case.vdim, batch_first=True,
    ).eval()  # fmt: skip
    with torch.no_grad():
        for parameter in module.parameters():  # biases too: PyTorch starts them at zero
            parameter.copy_(torch.randn(parameter.shape, generator=draw) * 0.5)
    query = torch.randn(case.batch, case.length, case.d_model, generator=draw)
    key, value = query, query
    if case.is_cross:
        key = torch.randn(case.batch, case.source_length, case.kdim or case.d_model, generator=draw)
        value = torch.randn(
            case.batch, case.source_length, case.vdim or case.d_model, generator=draw
        )
    source_length = key.shape[1]
    padding = None
    if case.key_padding_mask:
        padding = torch.rand(case.batch, source_length, generator=draw) < 0.5
        padding[:, 0] = False  # every query keeps a key
    attn_mask = None
    if case.attn_mask == "bool":
        attn_mask = torch.rand(case.length, source_length, generator=draw) < 0.4
        attn_mask[:, 0] = False
    elif case.attn_mask == "float":
        attn_mask = torch.randn(case.length, source_length, generator=draw)
    return Reference(module, query, key, value, padding, attn_mask)


def reference_output(reference: Reference) -> tuple[Tensor, Tensor]:
    padding = reference.key_padding_mask
    attn_mask = reference.attn_mask
    if padding is not None and attn_mask is not None and attn_mask.is_floating_point():
        # PyTorch deprecates mixing a bool padding mask with a float attn_mask: match the dtypes
        padding = torch.zeros(padding.shape).masked_fill(padding, float("-inf"))
    with torch.no_grad():
        output, weights = reference.module(
            reference.query, reference.key, reference.value,
            key_padding_mask=padding, attn_mask=attn_mask,
            need_weights=True, average_attn_weights=False,
        )  # fmt: skip
    return output, weights


def service_request(case: Case, reference: Reference) -> dict[str, Any]:
    config = {
        "d_model": case.d_model, "num_heads": case.num_heads, "bias": case.bias,
        "add_bias_kv": case.add_bias_kv, "add_zero_attn": case.add_zero_attn,
        "kdim": case.kdim, "vdim": case.vdim, "positional_encoding": "none",
    }  # fmt: skip
    body: dict[str, Any] = {
        "embeddings": reference.query.tolist(),
        "parameters": {
            name: tensor.tolist() for name, tensor in reference.module.state_dict().items()
        },
        "config": config,
    }
    if case.is_cross:
        body["key_embeddings"] = reference.key.tolist()
        body["value_embeddings"] = reference.value.tolist()
    if reference.key_padding_mask is not None:
        body["key_padding_mask"] = reference.key_padding_mask.tolist()
    if reference.attn_mask is not None:
        body["attn_mask"] = reference.attn_mask.tolist()
    return body


def assert_matches_pytorch(results: list[dict[str, Any]], output: Tensor, weights: Tensor) -> None:
    assert len(results) == output.shape[0]
    for row, result in enumerate(results):
        np.testing.assert_allclose(
            array(result["output"]), output[row].numpy(), atol=PARITY_TOLERANCE, rtol=0
        )
        np.testing.assert_allclose(
            array(result["attention"]), weights[row].numpy(), atol=PARITY_TOLERANCE, rtol=0
        )
        assert result["fully_masked_queries"] == []


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_pytorch_state_dict_reproduces_multihead_attention(
    client: httpx.Client, case: Case
) -> None:
    reference = build_reference(case)
    output, weights = reference_output(reference)

    results = attend(client, service_request(case, reference))["results"]

    assert_matches_pytorch(results, output, weights)


def test_separate_projection_weights_load_into_a_packed_layer(client: httpx.Client) -> None:
    """q/k/v_proj_weight given for a layer whose PyTorch twin packs them in in_proj_weight."""
    case = Case()
    reference = build_reference(case)
    body = service_request(case, reference)
    q, k, v = reference.module.in_proj_weight.detach().chunk(3)
    del body["parameters"]["in_proj_weight"]
    body["parameters"].update(
        q_proj_weight=q.tolist(), k_proj_weight=k.tolist(), v_proj_weight=v.tolist()
    )

    results = attend(client, body)["results"]

    assert_matches_pytorch(results, *reference_output(reference))


@pytest.mark.parametrize("num_kv_heads", [1, 2, 4])
def test_seeded_weights_are_the_library_models_for_the_seed(
    client: httpx.Client, num_kv_heads: int
) -> None:
    """Without `parameters` the service runs AttentionModel(config); exported to PyTorch's layout
    (K/V heads repeated for grouped-query attention) those weights give the same numbers."""
    fields: dict[str, Any] = {
        "d_model": 16, "num_heads": 4, "num_kv_heads": num_kv_heads, "seed": 7,
        "positional_encoding": "none",
    }  # fmt: skip
    layer = AttentionModel(AttentionConfig(**fields)).attention
    module = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    module.load_state_dict(export_pytorch_state_dict(layer))
    query = torch.randn(1, 5, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        output, weights = module(query, query, query, need_weights=True, average_attn_weights=False)

    results = attend(client, {"embeddings": query.tolist(), "config": fields})["results"]

    assert_matches_pytorch(results, output, weights)
