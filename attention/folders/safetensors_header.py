"""A ``.safetensors`` file's header, read and checked before any tensor is.

The format: 8 bytes (little-endian u64) giving the header's length N, N bytes of JSON mapping
each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets into the data
that follows; an optional ``__metadata__`` entry holds strings), then the data. Checking the
header against the file's size and against the shapes config.json implies costs a few reads;
loading a tensor that would turn out wrong costs its memory.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from attention.errors import ParameterError
from attention.folders.files import MiB, file_error, os_cause

MAX_HEADER_BYTES = 100 * MiB  # the safetensors library's own limit
ITEM_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
FLOATING = ("F16", "BF16", "F32", "F64")
"""The dtypes a weight may be stored in; loading converts it to the model's dtype."""


@dataclass(frozen=True)
class TensorEntry:
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def read_header(path: Path, folder: Path) -> dict[str, TensorEntry]:
    """The tensors a safetensors file declares, checked against the file's size."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            length = _header_length(handle.read(8), size, path, folder)
            raw = handle.read(length)
    except OSError as error:
        raise file_error(path, folder, os_cause(error)) from None
    if len(raw) != length:
        raise file_error(path, folder, "is truncated: it ends inside its header")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise file_error(
            path, folder, "is not a safetensors file: its header is not JSON"
        ) from None
    if not isinstance(header, dict):
        raise file_error(path, folder, "is not a safetensors file: its header is not an object")
    header.pop("__metadata__", None)
    data_bytes = size - 8 - length
    return {name: _entry(name, value, data_bytes, path, folder) for name, value in header.items()}


def _header_length(prefix: bytes, size: int, path: Path, folder: Path) -> int:
    if len(prefix) < 8:
        raise file_error(path, folder, f"is not a safetensors file: it has only {size} bytes")
    length = int.from_bytes(prefix, "little")
    if length > MAX_HEADER_BYTES:
        raise file_error(
            path,
            folder,
            f"is not a safetensors file: its header would be {length:,} bytes "
            f"(at most {MAX_HEADER_BYTES:,})",
        )
    if 8 + length > size:
        raise file_error(
            path,
            folder,
            f"is truncated: its header claims {length:,} bytes, the file has {size:,}",
        )
    return length


def _entry(name: str, value: object, data_bytes: int, path: Path, folder: Path) -> TensorEntry:
    def bad(why: str) -> Exception:
        return file_error(path, folder, f"has a header that lies about {name}: {why}")

    if not isinstance(value, dict):
        raise bad("not an object")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if not isinstance(dtype, str):
        raise bad(f"dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_natural(size) for size in shape):
        raise bad(f"shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_natural(offset) for offset in offsets)
        or offsets[0] > offsets[1]
    ):
        raise bad(f"data_offsets {offsets!r}")
    begin, end = offsets
    if end > data_bytes:
        raise file_error(
            path,
            folder,
            f"is truncated: {name} ends at byte {end:,} of the data, the file holds {data_bytes:,}",
        )
    if dtype in ITEM_BYTES and end - begin != math.prod(shape) * ITEM_BYTES[dtype]:
        raise bad(f"{end - begin:,} bytes for shape {tuple(shape)} of {dtype}")
    return TensorEntry(dtype, tuple(shape), begin, end)


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_tensors(
    entries: Mapping[str, TensorEntry],
    expected: Mapping[str, tuple[int, ...]],
    names: Mapping[str, str],
    file_name: str,
    family: str = "BERT",
) -> None:
    """Every expected tensor is declared, floating-point and of the shape config.json implies.

    `names` maps the model's names (``embeddings.word_embeddings.weight``) to the file's
    (``bert.embeddings.word_embeddings.weight``).
    """
    missing = [key for key in expected if key not in names]
    if missing:
        raise ParameterError(
            f"{file_name} lacks {', '.join(missing[:3])}"
            f"{f' and {len(missing) - 3} more' if len(missing) > 3 else ''}"
            f" (is this a {family} checkpoint?)",
            field=missing[0],
        )
    for key, shape in expected.items():
        entry = entries[names[key]]
        if entry.dtype not in FLOATING:
            raise ParameterError(
                f"{file_name}: {names[key]} is {entry.dtype}; weights must be one of "
                f"{', '.join(FLOATING)}",
                field=key,
            )
        if entry.shape != shape:
            raise ParameterError(
                f"{file_name}: {names[key]} has shape {entry.shape}; config.json implies {shape}",
                field=key,
            )
