"""The random model's modules: built once per (config, dtype, device), kept under a byte bound."""

from __future__ import annotations

import threading
from collections import OrderedDict

import torch

from attention import AttentionConfig, AttentionModel
from attention.cost import parameter_count
from attention.embedding import TokenVectorCache


class ModuleCache:
    """The seeded model of each (config, dtype, device), built once, bounded in bytes: least
    recently used evicted. Their string tokens' vectors live in one shared `TokenVectorCache`."""

    def __init__(self, max_bytes: int, device: torch.device, tokens: TokenVectorCache) -> None:
        self.max_bytes, self.device, self.tokens = max_bytes, device, tokens
        self.bytes = 0
        self._models: OrderedDict[tuple[AttentionConfig, torch.dtype], AttentionModel] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def __contains__(self, key: tuple[AttentionConfig, torch.dtype]) -> bool:
        return key in self._models

    def get(self, config: AttentionConfig, dtype: torch.dtype) -> AttentionModel:
        key = (config, dtype)
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
        with torch.inference_mode(False):  # parameters must be ordinary tensors, not inference ones
            model = AttentionModel(config, self.tokens).to(device=self.device, dtype=dtype).eval()
        self._keep(key, model)
        return model

    def _keep(self, key: tuple[AttentionConfig, torch.dtype], model: AttentionModel) -> None:
        size = module_bytes(*key)
        with self._lock:
            if key in self._models or size > self.max_bytes:
                return
            self._models[key] = model
            self.bytes += size
            while self.bytes > self.max_bytes:
                evicted, _ = self._models.popitem(last=False)
                self.bytes -= module_bytes(*evicted)

    def __len__(self) -> int:
        return len(self._models)


def module_bytes(config: AttentionConfig, dtype: torch.dtype) -> int:
    return parameter_count(config) * dtype.itemsize
