"""A folder's weights: ``model.safetensors``, or shards listed by ``model.safetensors.index.json``.

Every header is read and checked (`read_header`) before any tensor is; the tensors are then read
one at a time, on access, so a model never holds a second copy of its checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from torch import Tensor

from attention.folders import files
from attention.folders.errors import ModelDependencyError
from attention.folders.safetensors_header import TensorEntry, read_header

WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
MAX_INDEX_BYTES = 16 * files.MiB


def safetensors_module() -> tuple[Any, type[Exception]]:
    """safetensors' ``safe_open`` and its error type, imported only when a model is loaded."""
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise ModelDependencyError("safetensors") from None
    return safe_open, SafetensorError


def weight_files(folder: Path) -> dict[str, Path] | None:
    """Each tensor's file: model.safetensors, else the shards its index names; None if neither.

    The index is checked: a JSON object whose ``weight_map`` maps names to file names inside
    the folder (no path separators), every one of which exists.
    """
    single = folder / WEIGHTS_FILE
    found = files.kind(single, folder)
    if found is not None:
        files.require_regular(single, folder, found)
        return {"": single}
    index = folder / INDEX_FILE
    found = files.kind(index, folder)
    if found is None:
        return None
    files.require_regular(index, folder, found)
    weight_map = files.read_json_object(index, folder, max_bytes=MAX_INDEX_BYTES).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise files.file_error(index, folder, "has no weight_map object naming the shards")
    shards: dict[str, Path] = {}
    for name, shard in weight_map.items():
        if (
            not isinstance(shard, str)
            or not shard
            or "/" in shard
            or "\\" in shard
            or shard
            in (
                ".",
                "..",
            )
        ):
            raise files.file_error(index, folder, f"maps {name} to {shard!r}, not a file name")
        path = folder / shard
        shard_kind = files.kind(path, folder)
        if shard_kind is None:
            raise files.file_error(path, folder, f"is missing: {INDEX_FILE} lists it")
        files.require_regular(path, folder, shard_kind)
        shards[name] = path
    return shards


def read_entries(
    folder: Path, tensor_files: Mapping[str, Path]
) -> tuple[dict[str, TensorEntry], dict[str, Path]]:
    """Every tensor's header entry and the file that holds it, each header read once."""
    entries: dict[str, TensorEntry] = {}
    where: dict[str, Path] = {}
    for path in dict.fromkeys(tensor_files.values()):
        for name, entry in read_header(path, folder).items():
            entries[name], where[name] = entry, path
    if "" not in tensor_files:  # sharded: the index must say where each tensor really is
        for name, path in tensor_files.items():
            if where.get(name) != path:
                raise files.file_error(
                    folder / INDEX_FILE, folder, f"places {name} in {path.name}, which lacks it"
                )
    return entries, where


@contextmanager
def open_tensors(folder: Path, where: Mapping[str, Path]) -> Iterator[Mapping[str, Tensor]]:
    """The tensors of `where` (name -> file), read one at a time on access."""
    safe_open, safetensor_error = safetensors_module()
    current: Path | None = None
    try:
        with ExitStack() as stack:
            handles = {}
            for path in dict.fromkeys(where.values()):
                current = path
                handles[path] = stack.enter_context(safe_open(str(path), framework="pt"))
            current = None
            yield LazyTensors({name: handles[path] for name, path in where.items()})
    except OSError as error:
        path = current or next(iter(where.values()))
        raise files.file_error(path, folder, files.os_cause(error)) from None
    except safetensor_error as error:
        path = current or next(iter(where.values()))
        message = files.scrub(str(error), folder)
        raise files.file_error(path, folder, f"is not a safetensors file: {message}") from None


class LazyTensors(Mapping[str, Tensor]):
    """Open safetensors files as one mapping: a tensor is read when it is looked up."""

    def __init__(self, handles: Mapping[str, Any]) -> None:
        self._handles = handles

    def __getitem__(self, key: str) -> Tensor:
        tensor: Tensor = self._handles[key].get_tensor(key)
        return tensor

    def __iter__(self) -> Iterator[str]:
        return iter(self._handles)

    def __len__(self) -> int:
        return len(self._handles)
