"""Response bodies straight from numpy buffers: JSON through orjson, or MessagePack.

Turning attention into JSON costs far more than computing it, so arrays never pass through
Python lists: orjson writes numpy buffers directly (NaN and ±Inf as null), and MessagePack
carries them as raw little-endian bytes, ``{"dtype", "shape", "data"}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import ormsgpack

JSON = "application/json"
MSGPACK = "application/msgpack"
MSGPACK_TYPES = frozenset({MSGPACK, "application/x-msgpack", "application/vnd.msgpack"})

Array = np.ndarray[Any, Any]


def negotiate(accept: str | None) -> str:
    """MessagePack when the client's Accept header names it, JSON otherwise."""
    if accept:
        for part in accept.split(","):
            if part.split(";")[0].strip().lower() in MSGPACK_TYPES:
                return MSGPACK
    return JSON


def prepare_arrays(value: Any, precision: int | None) -> Any:
    """Round float arrays (vectorised) and make every array contiguous, in nested dicts/lists."""
    if isinstance(value, np.ndarray):
        if precision is not None and value.dtype.kind == "f":
            value = np.round(value, precision)
        return np.ascontiguousarray(value)
    if isinstance(value, dict):
        return {key: prepare_arrays(item, precision) for key, item in value.items()}
    if isinstance(value, list):
        return [prepare_arrays(item, precision) for item in value]
    return value


def encode(payload: Any, media_type: str, precision: int | None = None) -> bytes:
    prepared = prepare_arrays(payload, precision)
    if media_type == MSGPACK:
        return ormsgpack.packb(prepared, default=_array_to_msgpack)
    return orjson.dumps(prepared, option=orjson.OPT_SERIALIZE_NUMPY)


def _array_to_msgpack(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        little = value.astype(value.dtype.newbyteorder("<"), copy=False)
        return {"dtype": little.dtype.name, "shape": list(little.shape), "data": little.tobytes()}
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot encode {type(value).__name__}")


def decode_msgpack_arrays(value: Any) -> Any:
    """The client side: every {"dtype", "shape", "data"} back into a numpy array."""
    if isinstance(value, dict):
        if set(value) == {"dtype", "shape", "data"} and isinstance(value["data"], bytes):
            return np.frombuffer(
                value["data"], dtype=np.dtype(value["dtype"]).newbyteorder("<")
            ).reshape(value["shape"])
        return {key: decode_msgpack_arrays(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_msgpack_arrays(item) for item in value]
    return value
