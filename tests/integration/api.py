"""Small helpers for talking to POST /attention and reading its answers as arrays."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

Array = np.ndarray[Any, Any]
JSON_FLOAT32_TOLERANCE = 1e-6
"""JSON carries float32 numbers in their shortest exact form: equal inputs give equal numbers,
so comparisons of one computation against another only allow for float32 arithmetic."""

SMALL = {"d_model": 8, "num_heads": 2}
"""A head configuration small enough that every test runs in milliseconds."""


def attend(client: httpx.Client, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """POST /attention, require 200, return the decoded JSON."""
    response = client.post("/attention", json=body, **kwargs)
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def only_result(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """The single result of a one-sequence request."""
    results = attend(client, body)["results"]
    assert len(results) == 1
    result: dict[str, Any] = results[0]
    return result


def array(value: Any) -> Array:
    """Nested JSON lists as a float64 array; null (a non-finite number) becomes NaN."""
    return np.array(value, dtype=np.float64)


def error_detail(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["detail"]


def validation_error(response: httpx.Response) -> dict[str, Any]:
    """The first item of a 422 body, which has FastAPI's shape: detail: [{loc, msg, type}]."""
    items = error_detail(response, 422)
    assert isinstance(items, list)
    assert items
    for item in items:
        assert set(item) == {"loc", "msg", "type"}
        assert item["loc"][0] == "body"
    first: dict[str, Any] = items[0]
    return first


def assert_alive(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
