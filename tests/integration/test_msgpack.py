"""MessagePack responses: the JSON structure, arrays as raw little-endian buffers."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import ormsgpack
import pytest

from app.http.encoding import decode_msgpack_arrays
from tests.integration.api import array, attend

pytestmark = pytest.mark.integration

BODY: dict[str, Any] = {
    "sequences": [["the", "man", "who", "passes"], ["the", "sword"]],
    "config": {"d_model": 8, "num_heads": 2, "causal": True},
    "output": {"steps": "all", "metrics": True},
}


def msgpack_attend(client: httpx.Client, body: dict[str, Any], accept: str) -> Any:
    response = client.post("/attention", json=body, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/msgpack"
    return decode_msgpack_arrays(ormsgpack.unpackb(response.content))


def assert_same_numbers(packed: Any, json_value: Any, where: str) -> None:
    if isinstance(json_value, dict):
        assert packed.keys() == json_value.keys(), where
        for key in json_value:
            assert_same_numbers(packed[key], json_value[key], f"{where}.{key}")
    elif isinstance(packed, np.ndarray):
        if packed.dtype.kind == "f":
            # JSON writes NaN and ±Inf as null (read back as NaN), and a float32 as the shortest
            # decimal that reads back as the same float32
            finite = np.where(np.isfinite(packed), packed, np.nan)
            from_json = array(json_value).astype(packed.dtype)
            np.testing.assert_array_equal(finite, from_json, err_msg=where)
        else:
            assert packed.tolist() == json_value, where
    elif isinstance(json_value, list) and json_value and isinstance(json_value[0], dict):
        assert len(packed) == len(json_value), where
        for index, (ours, theirs) in enumerate(zip(packed, json_value, strict=True)):
            assert_same_numbers(ours, theirs, f"{where}[{index}]")
    else:
        assert packed == json_value, where


def test_msgpack_carries_the_json_numbers_as_arrays(client: httpx.Client) -> None:
    as_json = attend(client, BODY)
    packed = msgpack_attend(client, BODY, "application/msgpack")

    first = packed["results"][0]
    assert first["attention"].dtype == np.float32
    assert first["attention"].shape == (2, 4, 4)
    assert first["steps"]["masked_scores"].shape == (2, 4, 4)
    assert np.isneginf(first["steps"]["masked_scores"][0, 0, 1])
    assert_same_numbers(packed["results"], as_json["results"], "results")
    assert packed["config"] == as_json["config"]


def test_msgpack_is_chosen_from_an_accept_list_with_parameters(client: httpx.Client) -> None:
    packed = msgpack_attend(client, BODY, "application/json;q=0.5, application/x-msgpack;q=1")

    assert packed["results"][1]["tokens"] == ["the", "sword"]


def test_json_is_the_default_for_other_accept_headers(client: httpx.Client) -> None:
    response = client.post("/attention", json=BODY, headers={"Accept": "text/html, */*"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


def test_msgpack_precision_rounds_the_arrays(client: httpx.Client) -> None:
    body = {**BODY, "output": {"precision": 2}}
    packed = msgpack_attend(client, body, "application/msgpack")

    attention = packed["results"][0]["attention"].astype(np.float64)
    np.testing.assert_allclose(attention, np.round(attention, 2), atol=1e-6)
