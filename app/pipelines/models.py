"""The decoder folders of ATTENTION_MODELS_DIR: found at start-up, loaded on first use, kept
under a memory budget.

At start-up each sub-folder's config.json is read and checked (its architecture and its size,
from the configuration alone): a folder that cannot be served is listed in GET /models as
``unavailable`` with why, and never loaded. A model is loaded by the first request that names it
(concurrent first requests wait for one load, under the entry's lock); models stay loaded while
their parameters fit ATTENTION_MODELS_MEMORY_BYTES, the least recently used evicted first to make
room. A model larger than the whole budget is refused at start-up with both sizes.

A request that holds an evicted model keeps it alive until its answer is written, so the budget
can be passed by one model for that long: the budget bounds what stays loaded between requests.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from attention import AttentionError, InputError
from attention.bert import WordPieceTokenizer
from attention.bert.config import format_bytes
from attention.decoder import (
    DecoderConfig,
    DecoderInfo,
    DecoderModel,
    load_decoder,
    parameter_bytes,
    read_decoder_config,
)
from attention.decoder.config import num_parameters
from attention.folders import files

logger = logging.getLogger("app")
State = Literal["available", "loading", "ready", "unavailable"]


@dataclass(frozen=True)
class Decoder:
    model: DecoderModel
    tokenizer: WordPieceTokenizer
    info: DecoderInfo


@dataclass
class Entry:
    """One folder: what its config.json says, and where its model is."""

    name: str
    path: Path
    config: DecoderConfig | None = None
    state: State = "available"
    reason: str | None = None
    loaded: Decoder | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def source(self) -> str:
        return f"folder:{self.path.name}"

    @property
    def bytes(self) -> int:
        return 0 if self.config is None else parameter_bytes(self.config)


class ModelLibrary:
    """The decoders of one folder of model folders, by name (the folder's name in lower case)."""

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

    def _scan(self, folder: Path) -> None:
        try:
            files.require_folder(folder)
            children = sorted(path for path in folder.iterdir() if path.is_dir())
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
        """Architecture and size from config.json alone: nothing is allocated."""
        try:
            entry.config = read_decoder_config(entry.path)
        except AttentionError as error:
            self._refuse(entry, error.message)
            return
        except Exception as error:  # whatever the folder holds, the service starts
            logger.exception("model folder %s could not be read", entry.path)
            self._refuse(entry, f"could not be read ({type(error).__name__})")
            return
        needed, limit = entry.bytes, min(self.budget_bytes, self.max_bytes)
        if needed > limit:
            setting = (
                "ATTENTION_MODELS_MEMORY_BYTES"
                if self.budget_bytes <= self.max_bytes
                else "ATTENTION_MAX_MODEL_BYTES"
            )
            self._refuse(
                entry,
                f"its {num_parameters(entry.config):,} parameters take {format_bytes(needed)} "
                f"in float32, more than the {format_bytes(limit)} of {setting}",
            )

    def _refuse(self, entry: Entry, why: str) -> None:
        entry.state, entry.reason, entry.config = "unavailable", f"{entry.source}: {why}", None

    def get(self, name: str) -> Decoder:
        """The loaded model; loads it on first use (once, whoever else asks meanwhile)."""
        entry = self._entries[name]
        with entry.lock:
            if entry.loaded is None:
                if entry.state == "unavailable":
                    raise InputError(
                        f"model={name!r} is unavailable: {entry.reason}", field="model"
                    )
                entry.state = "loading"
                entry.loaded = self._load(entry)
                entry.state = "ready"
        with self._lock:
            self._recent[name] = None
            self._recent.move_to_end(name)
            self._evict(keep=name)
        return entry.loaded

    def _load(self, entry: Entry) -> Decoder:
        try:
            model, tokenizer, info = load_decoder(
                entry.path, self.device, torch.float32, name=entry.name, max_bytes=self.max_bytes
            )
        except AttentionError as error:
            self._refuse(entry, error.message)
            logger.warning("model %s unavailable: %s", entry.path, error.message)
            raise InputError(
                f"model={entry.name!r} is unavailable: {entry.reason}", field="model"
            ) from None
        except Exception as error:
            logger.exception("model %s could not be loaded", entry.path)
            self._refuse(
                entry,
                f"could not be loaded ({type(error).__name__}); the server's log has the details",
            )
            raise InputError(
                f"model={entry.name!r} is unavailable: {entry.reason}", field="model"
            ) from None
        logger.info("model %s loaded: %s bytes of parameters", entry.name, info.parameter_bytes)
        return Decoder(model, tokenizer, info)

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
        described: dict[str, Any] = {
            "name": entry.name,
            "kind": "decoder",
            "source": entry.source,
            "status": entry.state,
        }
        if entry.reason is not None:
            return described | {"layers": 0, "reason": entry.reason}
        config = entry.config
        assert config is not None
        return described | {
            "architecture": config.model_type,
            "layers": config.num_layers,
            "heads": config.num_heads,
            "kv_heads": config.num_kv_heads,
            "d_model": config.hidden_size,
            "head_dim": config.head_dim,
            "vocab_size": config.vocab_size,
            "max_positions": config.max_positions,
            "sliding_windows": list(config.windows),
            "tied_embeddings": config.tie_word_embeddings,
            "parameters": num_parameters(config),
            "parameter_bytes": entry.bytes,
        }
