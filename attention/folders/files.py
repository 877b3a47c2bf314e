"""Reading the files of a model folder so that every failure is a ModelFileError.

Any OSError (missing, permission denied, a folder where a file should be, a loop of links...)
and any malformed content becomes a message that names the file by its name within the folder
and the cause, never by its absolute path: a service shows these messages to its clients.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any, Literal

from attention.folders.errors import ModelFileError

DEFAULT_MAX_MODEL_BYTES = 3 * 1024**3 // 2
"""The parameter bytes a model (encoder or decoder) may take unless the caller says otherwise:
17 times all-MiniLM-L6-v2 (86 MiB in float32), bert-large (1.25 GiB) with room to spare, small
enough that two workers of a 24 GiB machine each hold it, with a float64 copy, beside the other
bounds of the memory model (docs/reliability.md)."""

KiB, MiB = 1024, 1024 * 1024

_CAUSES = {
    errno.ENOENT: "does not exist",
    errno.EACCES: "cannot be read: permission denied",
    errno.EPERM: "cannot be read: permission denied",
    errno.ENOTDIR: "is inside a file, not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.ELOOP: "is a loop of symbolic links",
    errno.ENAMETOOLONG: "has too long a name",
}


def os_cause(error: OSError) -> str:
    """What went wrong, in words and without the path that ``str(error)`` would carry."""
    if error.errno in _CAUSES:
        return _CAUSES[error.errno]
    if error.errno is not None:
        return f"cannot be read: {os.strerror(error.errno).lower()}"
    return f"cannot be read ({type(error).__name__})"


def label(path: Path, folder: Path | None) -> str:
    """The name a message uses: 'the model folder', or the file's name within the folder."""
    if folder is None:
        return "the model folder"
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.name


def file_error(path: Path, folder: Path | None, cause: str) -> ModelFileError:
    return ModelFileError(f"{label(path, folder)} {cause}", path=path)


def kind(path: Path, folder: Path | None) -> Literal["file", "folder", "other"] | None:
    """What `path` is, None when it does not exist; any other OSError is a ModelFileError."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as error:
        raise file_error(path, folder, os_cause(error)) from None
    if stat.S_ISDIR(mode):
        return "folder"
    return "file" if stat.S_ISREG(mode) else "other"


def require_regular(path: Path, folder: Path, found: str) -> None:
    """A folder, a pipe or a device where a file should be: reading a pipe would wait forever."""
    if found == "folder":
        raise file_error(path, folder, "is a folder, not a file")
    if found != "file":
        raise file_error(path, folder, "is not a regular file (a pipe, socket or device)")


def require_folder(folder: Path) -> None:
    found = kind(folder, None)
    if found is None:
        raise file_error(folder, None, "does not exist")
    if found != "folder":
        raise file_error(folder, None, "is a file, not a folder")


def read_bytes(path: Path, folder: Path, *, max_bytes: int) -> bytes:
    """The whole file, refused past `max_bytes` before anything is read."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise file_error(
                    path, folder, f"has {size:,} bytes, more than the {max_bytes:,} it may have"
                )
            return handle.read(max_bytes + 1)
    except OSError as error:
        raise file_error(path, folder, os_cause(error)) from None


CONFIG_ROLE = "the model's configuration file"


def read_required_object(path: Path, folder: Path, role: str) -> dict[str, Any]:
    """A JSON object the folder must hold (config.json): missing, or not a regular file, is a
    ModelFileError naming it and its `role`."""
    found = kind(path, folder)
    if found is None:
        raise file_error(path, folder, f"is missing: {role}")
    require_regular(path, folder, found)
    return read_json_object(path, folder)


def read_json_object(path: Path, folder: Path, *, max_bytes: int = MiB) -> dict[str, Any]:
    """A JSON file that must hold an object (config.json, sentence_bert_config.json)."""
    content = read_json_bytes(path, folder, max_bytes=max_bytes)
    if not isinstance(content, dict):
        raise file_error(path, folder, f"must hold a JSON object, not {_json_type(content)}")
    return content


def read_json_bytes(path: Path, folder: Path, *, max_bytes: int = MiB) -> Any:
    """A JSON file's value, whatever it is; every failure a ModelFileError naming the file."""
    raw = read_bytes(path, folder, max_bytes=max_bytes)
    try:
        content = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise file_error(path, folder, "is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise file_error(path, folder, f"is not valid JSON: {error.msg} at {where}") from None
    except RecursionError:
        raise file_error(path, folder, "is not usable JSON: nested too deeply") from None
    return content


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def scrub(text: str, folder: Path) -> str:
    """A third-party message without the folder's absolute path, should it carry one."""
    for spelled in {str(folder), os.path.abspath(folder)}:
        if spelled not in ("", "."):
            text = text.replace(spelled, folder.name or "the model folder")
    return text
