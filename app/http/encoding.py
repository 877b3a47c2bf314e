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
    """MessagePack when the Accept header names one of its types with a quality above 0 and no
    lower than JSON's; JSON otherwise (and without the header). A wildcard (`*/*`,
    `application/*`) never selects MessagePack: a client gets it only by asking for it."""
    if not accept:
        return JSON
    ranges = _media_ranges(accept)
    msgpack = max((ranges.get(name, 0.0) for name in MSGPACK_TYPES), default=0.0)
    if msgpack > 0 and msgpack >= _quality(ranges, JSON):
        return MSGPACK
    return JSON


def _media_ranges(accept: str) -> dict[str, float]:
    """`{"application/json": 1.0, "*/*": 0.1, ...}` from `application/json, */*;q=0.1`."""
    ranges: dict[str, float] = {}
    for part in accept.split(","):
        name, *parameters = part.split(";")
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                quality = _parse_quality(value.strip())
        media = name.strip().lower()
        if media:
            ranges[media] = max(quality, ranges.get(media, 0.0))
    return ranges


def _parse_quality(value: str) -> float:
    try:
        quality = float(value)
    except ValueError:
        return 1.0  # a malformed q counts as absent
    return min(max(quality, 0.0), 1.0) if quality == quality else 1.0  # NaN: absent


def _quality(ranges: dict[str, float], media_type: str) -> float:
    """The quality of the most specific range that matches (RFC 9110, 12.5.1); 0 if none."""
    kind = media_type.split("/")[0]
    for candidate in (media_type, f"{kind}/*", "*/*"):
        if candidate in ranges:
            return ranges[candidate]
    return 0.0


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
    # without rounding, nothing walks the payload in Python: the encoders call back only for
    # what they cannot write themselves (a non-contiguous array; every array for MessagePack),
    # which saves ~70 calls for a small answer (docs/performance.md)
    prepared = payload if precision is None else prepare_arrays(payload, precision)
    if media_type == MSGPACK:
        return ormsgpack.packb(prepared, default=_array_to_msgpack)
    return orjson.dumps(prepared, option=orjson.OPT_SERIALIZE_NUMPY, default=_contiguous)


def _contiguous(value: Any) -> Any:
    """orjson writes C-contiguous arrays itself and hands the others here."""
    if isinstance(value, np.ndarray) and not value.flags.c_contiguous:
        return np.ascontiguousarray(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


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
