"""The model families a folder of ATTENTION_MODELS_DIR may hold, and which one a folder is.

A folder's config.json names its family by `model_type`: an encoder (BERT, RoBERTa, DistilBERT,
served by app/pipelines/encoder) or a decoder (GPT-2, Llama, Mistral, Qwen2, by
app/pipelines/decoder). Each family reads and checks its configuration, counts its parameters,
checks its files short of the weights' values, loads, and describes itself in GET /models; the
library (app/pipelines/models.py) holds every family under one budget.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from app.pipelines.encoder.registry import Pretrained, encoder_sizes
from attention import ConfigError
from attention import bert as encoders
from attention import decoder as decoders
from attention.bert import BertConfig, WordPieceTokenizer
from attention.decoder import DecoderConfig, DecoderInfo, DecoderModel
from attention.folders import files

CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class Decoder:
    model: DecoderModel
    tokenizer: WordPieceTokenizer
    info: DecoderInfo


Loaded = Decoder | Pretrained
ModelConfig = DecoderConfig | BertConfig


class Family(ABC):
    """What the library needs of a model family: its config, its size, its loader, its entry
    in GET /models. One library (one budget, one listing) holds every family."""

    kind: Literal["pretrained", "decoder"]  # GET /models' kind: "pretrained" is an encoder
    model_types: tuple[str, ...]  # config.json's model_type values the family reads

    @abstractmethod
    def read_config(self, folder: Path) -> ModelConfig:
        """config.json, checked: an AttentionError names the file and the field."""

    @abstractmethod
    def parameters(self, config: Any) -> int:
        """Parameters counted from the configuration alone."""

    @abstractmethod
    def check_files(self, folder: Path, config: Any) -> None:
        """The loader's own checks of everything but the weights' values (the tokenizer, the
        safetensors headers): an AttentionError says what is wrong."""

    @abstractmethod
    def load(self, folder: Path, device: torch.device, name: str, max_bytes: int) -> Loaded:
        """The float32 model, its tokenizer and what was loaded."""

    @abstractmethod
    def describe(self, config: Any, loaded: Any) -> dict[str, Any]:
        """The family's sizes in GET /models."""


class EncoderFamily(Family):
    kind = "pretrained"
    model_types = encoders.config.SUPPORTED_MODEL_TYPES

    def read_config(self, folder: Path) -> BertConfig:
        return encoders.folder.read_config(folder)

    def parameters(self, config: BertConfig) -> int:
        return encoders.config.num_parameters(config)

    def check_files(self, folder: Path, config: BertConfig) -> None:
        encoders.folder.check_folder(folder, config)

    def load(self, folder: Path, device: torch.device, name: str, max_bytes: int) -> Pretrained:
        return Pretrained(
            *encoders.load_bert(folder, device, torch.float32, name=name, max_bytes=max_bytes)
        )

    def describe(self, config: BertConfig, loaded: Pretrained | None) -> dict[str, Any]:
        """The bundled encoder's entry (app/pipelines/encoder/registry.py), and once loaded
        the sentence embedding's pooling; max_tokens is the positions' until then."""
        max_tokens = config.max_tokens if loaded is None else loaded.info.max_length
        described = encoder_sizes(config, max_tokens)
        if loaded is not None:
            pooling = loaded.info.pooling
            described["pooling"] = {"mode": pooling.mode, "normalize": pooling.normalize}
        return described


class DecoderFamily(Family):
    kind = "decoder"
    model_types = decoders.SUPPORTED_MODEL_TYPES

    def read_config(self, folder: Path) -> DecoderConfig:
        return decoders.read_decoder_config(folder)

    def parameters(self, config: DecoderConfig) -> int:
        return decoders.num_parameters(config)

    def check_files(self, folder: Path, config: DecoderConfig) -> None:
        decoders.folder.check_folder(folder, config)

    def load(self, folder: Path, device: torch.device, name: str, max_bytes: int) -> Decoder:
        return Decoder(
            *decoders.load_decoder(folder, device, torch.float32, name=name, max_bytes=max_bytes)
        )

    def describe(self, config: DecoderConfig, loaded: Decoder | None) -> dict[str, Any]:
        return {
            "layers": config.num_layers,
            "heads": config.num_heads,
            "kv_heads": config.num_kv_heads,
            "d_model": config.hidden_size,
            "head_dim": config.head_dim,
            "vocab_size": config.vocab_size,
            "max_positions": config.max_positions,
            "sliding_windows": list(config.windows),
            "tied_embeddings": config.tie_word_embeddings,
        }


FAMILIES: tuple[Family, ...] = (EncoderFamily(), DecoderFamily())


def family_of(folder: Path) -> Family:
    """The family config.json's `model_type` belongs to; a ConfigError lists every one."""
    config = files.read_required_object(folder / CONFIG_FILE, folder, files.CONFIG_ROLE)
    model_type = config.get("model_type")
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    supported = "; ".join(
        f"{family.kind if family.kind == 'decoder' else 'encoder'}s: "
        f"{', '.join(sorted(family.model_types))}"
        for family in FAMILIES
    )
    raise ConfigError(
        f"{CONFIG_FILE}: model_type {model_type!r} is not supported ({supported})",
        field="model_type",
    )
