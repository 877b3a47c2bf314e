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
# streamed answers, one frame per layer (docs/architecture.md, streaming): NDJSON, one JSON
# object a line; and MessagePack objects back to back (a "sequence", as RFC 7464 for JSON)
NDJSON = "application/x-ndjson"
MSGPACK_SEQ = "application/vnd.msgpack-seq"
FRAME_ENCODINGS = {NDJSON: JSON, MSGPACK_SEQ: MSGPACK}  # a stream's type -> its frames' encoding

Array = np.ndarray[Any, Any]


def negotiate(accept: str | None) -> str:
    """The type the Accept header rates highest of a stream (MessagePack frames, NDJSON),
    MessagePack and JSON, in that order on a tie; JSON without the header or when none is
    accepted. A wildcard (`*/*`, `application/*`) counts for JSON only: a client gets the
    others only by naming them."""
    if not accept:
        return JSON
    ranges = _media_ranges(accept)
    offers = {
        MSGPACK_SEQ: ranges.get(MSGPACK_SEQ, 0.0),
        NDJSON: ranges.get(NDJSON, 0.0),
        MSGPACK: max(ranges.get(name, 0.0) for name in MSGPACK_TYPES),
        JSON: _quality(ranges, JSON),
    }
    best = max(offers, key=offers.__getitem__)  # the first of the highest: the order above
    return best if offers[best] > 0 else JSON


def frames_encoding(media_type: str) -> str:
    """The encoding of an answer's numbers: a stream's frames', or the whole answer's."""
    return FRAME_ENCODINGS.get(media_type, media_type)


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


def prepare_arrays(value: Any, precision: int | None, float16: bool = False) -> Any:
    """Round float arrays (vectorised), cast them to float16 if asked, and make every array
    contiguous, in nested dicts/lists."""
    if isinstance(value, np.ndarray):
        if precision is not None and value.dtype.kind == "f":
            value = np.round(value, precision)
        if float16 and value.dtype.kind == "f":
            value = value.astype(np.float16)
        return np.ascontiguousarray(value)
    if isinstance(value, dict):
        return {key: prepare_arrays(item, precision, float16) for key, item in value.items()}
    if isinstance(value, list):
        return [prepare_arrays(item, precision, float16) for item in value]
    return value


Body = bytes | memoryview  # an answer's bytes, or a view of them when they were built in place


def encode(
    payload: Any, media_type: str, precision: int | None = None, *, float16: bool = False
) -> Body:
    """`float16`: MessagePack's float arrays as float16 (JSON numbers follow `precision`)."""
    half = float16 and media_type == MSGPACK
    # without rounding or float16, nothing rebuilds the payload in Python: the encoders call back
    # only for what they cannot write themselves (a non-contiguous array; every array for
    # MessagePack), which saves ~70 calls for a small answer (docs/performance.md)
    prepared = (
        payload if precision is None and not half else prepare_arrays(payload, precision, half)
    )
    if media_type == MSGPACK:
        return ormsgpack.packb(prepared, default=_array_to_msgpack)
    if _largest_array(prepared) <= PIECE_NUMBERS:
        return orjson.dumps(prepared, option=NUMPY, default=_contiguous)
    out = bytearray()
    _write_json(prepared, out)
    return memoryview(out)  # no copy of what may be hundreds of megabytes


def encode_frame(
    payload: Any, media_type: str, precision: int | None = None, *, float16: bool = False
) -> bytes:
    """One frame of a stream of `media_type`: a JSON object and a newline, or one MessagePack
    object (orjson escapes every newline inside strings, so a line is a frame)."""
    encoding = FRAME_ENCODINGS[media_type]
    body = encode(payload, encoding, precision, float16=float16)
    return b"".join((body, b"\n")) if encoding == JSON else bytes(body)


def _contiguous(value: Any) -> Any:
    """orjson writes C-contiguous arrays itself and hands the others here."""
    if isinstance(value, np.ndarray) and not value.flags.c_contiguous:
        return np.ascontiguousarray(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


# orjson holds the GIL for a whole call: 200 ms for 64 MB of JSON, during which the event loop
# (the probes, every other request) waits. A large answer is written in pieces of at most this
# many numbers (a few ms each), so that other threads run between them.
PIECE_NUMBERS = 1 << 18
NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _write_json(value: Any, out: bytearray) -> None:
    """The same JSON as orjson.dumps(value), written piece by piece into `out`."""
    if isinstance(value, dict):
        out += b"{"
        for index, (key, item) in enumerate(value.items()):
            out += b"," if index else b""
            out += orjson.dumps(key)
            out += b":"
            _write_json(item, out)
        out += b"}"
    elif isinstance(value, list) or (isinstance(value, np.ndarray) and value.size > PIECE_NUMBERS):
        out += b"["
        for index, item in enumerate(value):
            if index:
                out += b","
            _write_json(item, out)
        out += b"]"
    else:
        out += orjson.dumps(value, option=NUMPY, default=_contiguous)


def _largest_array(value: Any) -> int:
    """The most numbers in one array of the answer. Lists are of one kind (results, labels,
    layer indices): one whose first item holds no array holds none, and is not walked (a small
    answer's token labels were 60 % of this walk's calls)."""
    if isinstance(value, np.ndarray):
        return int(value.size)
    if isinstance(value, dict):
        return max(map(_largest_array, value.values()), default=0)
    if isinstance(value, list) and value and isinstance(value[0], (dict, list, np.ndarray)):
        return max(map(_largest_array, value), default=0)
    return 0


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
