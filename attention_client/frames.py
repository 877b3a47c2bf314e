"""A streamed answer's frames (`application/vnd.msgpack-seq`: MessagePack objects back to back),
typed, and put back together into the answer POST /attention gives whole.

    Head   the model, the resolved config, the layers to come, each sequence's tokens
    Layer  one layer's fields of each sequence (attention, steps, metrics, top_k, pool, ...)
    End    each sequence's other fields (output, embedding, analysis, ...) and `meta`

An error frame is raised as the typed error of its status (docs/architecture.md, streaming).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import ormsgpack

from attention_client.arrays import decode_arrays
from attention_client.errors import error_for


@dataclass(frozen=True)
class Head:
    model: str
    config: dict[str, Any]
    layers: list[int]  # in the whole answer's order; layer frames come as they are computed
    layer_axis: bool  # whether the whole answer stacks the layers on a leading axis
    results: list[dict[str, Any]]  # per sequence: tokens, key_tokens


@dataclass(frozen=True)
class Layer:
    layer: int
    results: list[dict[str, Any]]  # per sequence: this layer's arrays, no layer axis


@dataclass(frozen=True)
class End:
    results: list[dict[str, Any]]
    meta: dict[str, Any]
    parameters: dict[str, Any] | None = None  # the random model's weights, with output.parameters


Frame = Head | Layer | End


def typed_frame(frame: dict[str, Any]) -> Frame:
    """A decoded frame as its class; an error frame raised as the error of its status."""
    kind = frame.get("frame")
    if kind == "head":
        return Head(frame["model"], frame["config"], frame["layers"], frame["layer_axis"],
                    frame["results"])  # fmt: skip
    if kind == "layer":
        return Layer(frame["layer"], frame["results"])
    if kind == "end":
        return End(frame["results"], frame["meta"], frame.get("parameters"))
    if kind == "error":
        error = frame["error"]
        raise error_for(int(error["status"]), error["detail"])
    raise ValueError(f"not a frame of the service: {kind!r}")


def msgpack_frames(chunks: Iterable[bytes]) -> Iterator[Frame]:
    """Each MessagePack object of a byte stream, as soon as its last byte has come."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while (end := object_end(buffer)) is not None:
            frame = decode_arrays(ormsgpack.unpackb(bytes(buffer[:end])))
            del buffer[:end]
            yield typed_frame(frame)
    if buffer:
        raise ValueError(f"the stream ended inside a frame ({len(buffer)} bytes left)")


# MessagePack markers followed by a fixed number of bytes: numbers, and fixext (type + data)
_FIXED = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4,
          0xD3: 8, 0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}  # fmt: skip
# markers followed by a length of n bytes: (n, what the length counts)
_SIZED = {0xC4: (1, "bytes"), 0xC5: (2, "bytes"), 0xC6: (4, "bytes"), 0xD9: (1, "bytes"),
          0xDA: (2, "bytes"), 0xDB: (4, "bytes"), 0xC7: (1, "ext"), 0xC8: (2, "ext"),
          0xC9: (4, "ext"), 0xDC: (2, "items"), 0xDD: (4, "items"), 0xDE: (2, "pairs"),
          0xDF: (4, "pairs")}  # fmt: skip


def object_end(data: bytes | bytearray) -> int | None:
    """The offset just past the first complete MessagePack object of `data`; None while it is
    incomplete. Only the structure is walked: a frame's array bytes are skipped, not read."""
    pending, at = 1, 0  # objects still to skip, and where the next one starts
    while pending:
        if at >= len(data):
            return None
        marker, at, pending = data[at], at + 1, pending - 1
        if marker <= 0x7F or marker >= 0xE0 or marker in (0xC0, 0xC2, 0xC3):
            continue  # fixint, negative fixint, nil, false, true
        if marker <= 0x8F:
            pending += 2 * (marker & 0x0F)  # fixmap
        elif marker <= 0x9F:
            pending += marker & 0x0F  # fixarray
        elif marker <= 0xBF:
            at += marker & 0x1F  # fixstr
        elif marker in _FIXED:
            at += _FIXED[marker]
        elif marker in _SIZED:
            width, counts = _SIZED[marker]
            if at + width > len(data):
                return None
            size, at = int.from_bytes(data[at : at + width], "big"), at + width
            if counts == "items":
                pending += size
            elif counts == "pairs":
                pending += 2 * size
            else:
                at += size + (1 if counts == "ext" else 0)
        else:
            raise ValueError(f"not MessagePack: marker 0x{marker:02x}")
    return at if at <= len(data) else None


def assemble(frames: Iterable[Frame]) -> dict[str, Any]:
    """The whole answer from its frames: each layer's arrays stacked on the layer axis in the
    order of the head's `layers` (when it has one), beside the head's and the end's fields."""
    head: Head | None = None
    layers: dict[int, list[dict[str, Any]]] = {}
    end: End | None = None
    for frame in frames:
        if isinstance(frame, Head):
            head = frame
        elif isinstance(frame, Layer):
            layers[frame.layer] = frame.results
        else:
            end = frame
    if head is None or end is None or set(layers) != set(head.layers):
        raise ValueError("the frames are not a whole stream: a head, its layers and an end")
    results = []
    for row, (named, ended) in enumerate(zip(head.results, end.results, strict=True)):
        per_layer = [layers[index][row] for index in head.layers]
        fields = _stack(per_layer) if head.layer_axis else per_layer[0]
        results.append({**named, **fields, **ended})
    whole = {"results": results, "config": head.config, "meta": end.meta}
    return whole if end.parameters is None else {**whole, "parameters": end.parameters}


def _stack(parts: list[Any]) -> Any:
    """Arrays stacked on a new leading axis; dicts field by field; anything else (positions,
    bounds, None) is the same in every layer."""
    first = parts[0]
    if isinstance(first, np.ndarray):
        return np.stack(parts)
    if isinstance(first, dict):
        return {name: _stack([part[name] for part in parts]) for name in first}
    return first
