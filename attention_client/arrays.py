"""MessagePack answers' arrays, `{"dtype", "shape", "data"}` with little-endian raw bytes, as
numpy arrays (the service's format: docs/architecture.md, the path of a request)."""

from __future__ import annotations

from typing import Any

import numpy as np

ARRAY_KEYS = frozenset({"dtype", "shape", "data"})


def decode_arrays(value: Any) -> Any:
    """Every array of a decoded MessagePack answer as a read-only numpy array, in place of its
    `{"dtype", "shape", "data"}` map; everything else as it is."""
    if isinstance(value, dict):
        if set(value) == ARRAY_KEYS and isinstance(value["data"], bytes):
            dtype = np.dtype(value["dtype"]).newbyteorder("<")
            return np.frombuffer(value["data"], dtype=dtype).reshape(value["shape"])
        return {key: decode_arrays(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_arrays(item) for item in value]
    return value
