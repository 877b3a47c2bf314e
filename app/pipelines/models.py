"""The model folders of ATTENTION_MODELS_DIR, encoders and decoders: found at start-up, loaded
on first use, kept under one memory budget.

At start-up each sub-folder's config.json is read: its `model_type` names the family
(app/pipelines/families.py), whose configuration is then checked with its size, then its
tokenizer and safetensors headers by the family loader's own checks: no weight is read, and
every worker finds the same faults. A folder that cannot be served is listed in GET /models as
``unavailable`` with why, and never loaded; one whose weights fail only when read (NaN, corrupt
data) becomes unavailable in the worker that tried. The loaded state (``ready``) is per worker.

A model is loaded by the first request that names it (concurrent first requests wait for one
load, under the entry's lock); models stay loaded while their
parameters fit ATTENTION_MODELS_MEMORY_BYTES, the least recently used evicted first to make
room, whatever their family. A model larger than the whole budget is refused at start-up with
both sizes.

A request that holds an evicted model keeps it alive until its answer is written, so the budget
can be passed by one model for that long: the budget bounds what stays loaded between requests.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch

from app.pipelines.encoder.registry import Pretrained
from app.pipelines.families import Decoder, Family, Loaded, ModelConfig, family_of
from attention import AttentionError, InputError
from attention.bert.config import format_bytes
from attention.folders import files

logger = logging.getLogger("app")
State = Literal["available", "loading", "ready", "unavailable"]
T = TypeVar("T")


@dataclass
class Entry:
    """One folder: its family, what its config.json says, and where its model is."""

    name: str
    path: Path
    family: Family | None = None
    config: ModelConfig | None = None
    state: State = "available"
    reason: str | None = None
    loaded: Loaded | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def source(self) -> str:
        return f"folder:{self.path.name}"

    @property
    def parameters(self) -> int:
        if self.family is None or self.config is None:
            return 0
        return self.family.parameters(self.config)

    @property
    def bytes(self) -> int:
        return self.parameters * torch.float32.itemsize


def unavailable(entry: Entry) -> InputError:
    """The error of a request that names a folder which cannot be served, and why."""
    return InputError(f"model={entry.name!r} is unavailable: {entry.reason}", field="model")


class ModelLibrary:
    """The models of one folder of model folders, by name (the folder's name in lower case)."""

    def __init__(
        self, folder: Path | None, device: torch.device, *, budget_bytes: int, max_bytes: int
    ) -> None:
        self.folder, self.device = folder, device
        self.budget_bytes, self.max_bytes = budget_bytes, max_bytes
        self.unavailable: str | None = None
        self._entries: dict[str, Entry] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()  # loaded, least recent first
        self._lock = threading.Lock()
        if folder is not None:
            self._scan(folder)

    @property
    def names(self) -> list[str]:
        return [name for name, entry in self._entries.items() if entry.state != "unavailable"]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def entry(self, name: str) -> Entry:
        return self._entries[name]

    def kind(self, name: str) -> str | None:
        """The GET /models kind ("decoder", or "pretrained": an encoder) of a folder of a known
        family; None when not here or of no known family (the encoder pipeline gives why)."""
        entry = self._entries.get(name)
        return None if entry is None or entry.family is None else entry.family.kind

    def _scan(self, folder: Path) -> None:
        try:
            files.require_folder(folder)
            # by the name served (lower case): "MyGPT2" is listed as mygpt2, after "bert"
            children = sorted(
                (path for path in folder.iterdir() if path.is_dir()),
                key=lambda path: (path.name.lower(), path.name),
            )
        except (AttentionError, OSError) as error:
            cause = error.message if isinstance(error, AttentionError) else "cannot be read"
            self.unavailable = f"ATTENTION_MODELS_DIR: {cause}"
            logger.warning("models folder %s unavailable: %s", folder, cause)
            return
        for path in children:
            entry = Entry(name=path.name.lower(), path=path)
            self._entries.setdefault(entry.name, entry)
            self._check(entry)

    def _check(self, entry: Entry) -> None:
        """Every fault found without reading a weight: family, architecture and size from
        config.json, then the loader's own checks of the tokenizer and the safetensors headers.
        Each worker scans alike, so all of them list the same folders as unavailable from the
        first request; what only loading finds (a tensor's bytes) stays per worker."""
        try:
            entry.family = family_of(entry.path)
            entry.config = entry.family.read_config(entry.path)
            too_big = self._over_budget(entry)
            if too_big is not None:
                self._refuse(entry, too_big)
                return
            entry.family.check_files(entry.path, entry.config)
        except AttentionError as error:
            self._refuse(entry, error.message)
        except Exception as error:  # whatever the folder holds, the service starts
            logger.exception("model folder %s could not be read", entry.path)
            self._refuse(entry, f"could not be read ({type(error).__name__})")

    def _over_budget(self, entry: Entry) -> str | None:
        """Why the entry can never be loaded for its size, None when it fits."""
        needed, limit = entry.bytes, min(self.budget_bytes, self.max_bytes)
        if needed <= limit:
            return None
        setting = (
            "ATTENTION_MODELS_MEMORY_BYTES"
            if self.budget_bytes <= self.max_bytes
            else "ATTENTION_MAX_MODEL_BYTES"
        )
        return (
            f"its {entry.parameters:,} parameters take {format_bytes(needed)} "
            f"in float32, more than the {format_bytes(limit)} of {setting}"
        )

    def _refuse(self, entry: Entry, why: str) -> None:
        entry.state, entry.reason, entry.config = "unavailable", f"{entry.source}: {why}", None

    def ready(self, name: str) -> bool:
        """Loaded: `get` returns at once, without reading a file."""
        entry = self._entries.get(name)
        return entry is not None and entry.loaded is not None

    async def loaded(self, get: Callable[[str], T], name: str) -> T:
        """`get(name)` (`self.encoder`, `self.decoder`): on the event loop when the model is
        loaded already, else in a thread (loading reads the folder; concurrent first requests
        wait for one load). A hop to a thread costs the loop 1-2 ms under load."""
        if self.ready(name):
            return get(name)
        return await asyncio.to_thread(get, name)

    def decoder(self, name: str) -> Decoder:
        loaded = self.get(name)
        assert isinstance(loaded, Decoder), "the pipelines ask by the entry's kind"
        return loaded

    def encoder(self, name: str) -> Pretrained:
        loaded = self.get(name)
        assert isinstance(loaded, Pretrained), "the pipelines ask by the entry's kind"
        return loaded

    def get(self, name: str) -> Loaded:
        """The loaded model; loads it on first use (once, whoever else asks meanwhile)."""
        entry = self._entries[name]
        with entry.lock:
            if entry.loaded is None:
                if entry.state == "unavailable":
                    raise unavailable(entry)
                entry.state = "loading"
                entry.loaded = self._load(entry)
                entry.state = "ready"
        with self._lock:
            self._recent[name] = None
            self._recent.move_to_end(name)
            self._evict(keep=name)
        return entry.loaded

    def _load(self, entry: Entry) -> Loaded:
        assert entry.family is not None, "an entry without a family is unavailable"
        try:
            loaded = entry.family.load(entry.path, self.device, entry.name, self.max_bytes)
        except AttentionError as error:
            self._refuse(entry, error.message)
            logger.warning("model %s unavailable: %s", entry.path, error.message)
            raise unavailable(entry) from None
        except Exception as error:
            logger.exception("model %s could not be loaded", entry.path)
            self._refuse(
                entry,
                f"could not be loaded ({type(error).__name__}); the server's log has the details",
            )
            raise unavailable(entry) from None
        logger.info("model %s loaded: %s bytes of parameters", entry.name, entry.bytes)
        return loaded

    def _evict(self, *, keep: str) -> None:
        """Unload the least recently used models until the loaded ones fit the budget."""
        for name in list(self._recent):
            if self.loaded_bytes <= self.budget_bytes:
                return
            if name == keep:
                continue
            entry = self._entries[name]
            entry.loaded, entry.state = None, "available"
            del self._recent[name]
            logger.info("model %s unloaded to stay within ATTENTION_MODELS_MEMORY_BYTES", name)

    @property
    def loaded_bytes(self) -> int:
        return sum(self._entries[name].bytes for name in self._recent)

    def describe(self) -> list[dict[str, Any]]:
        """The entries of GET /models, one per folder, whatever its state."""
        return [self._describe(entry) for entry in self._entries.values()]

    def _describe(self, entry: Entry) -> dict[str, Any]:
        family = entry.family
        described: dict[str, Any] = {
            "name": entry.name,
            "kind": "unknown" if family is None else family.kind,
            "source": entry.source,
            "status": entry.state,
        }
        if entry.reason is not None or family is None or entry.config is None:
            return described | {"layers": 0, "reason": entry.reason}
        return described | {
            "architecture": entry.config.model_type,
            **family.describe(entry.config, entry.loaded),
            "parameters": entry.parameters,
            "parameter_bytes": entry.bytes,
            "dtypes": ["float32"],  # the copy the library's budget counts, and the only one
        }
