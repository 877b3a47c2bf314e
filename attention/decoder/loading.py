"""Loading a Hugging Face decoder folder: config.json, model.safetensors (or shards with their
index) and tokenizer.json, checked in that order before anything is allocated (the folder, the
configuration and the model's size here, then the tokenizer against the vocabulary and every
safetensors header against the shapes config.json implies: attention/decoder/folder.py); only
then are the weights read, one at a time (attention/decoder/weights.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from attention.bert.tokenizer import WordPieceTokenizer
from attention.decoder.config import DecoderConfig
from attention.decoder.folder import check_folder, read_decoder_config
from attention.decoder.model import DecoderModel
from attention.decoder.size import check_model_size
from attention.decoder.weights import assignments, load_weights
from attention.device import resolve_device, resolve_dtype
from attention.folders import files
from attention.folders.checkpoint import open_tensors
from attention.folders.files import DEFAULT_MAX_MODEL_BYTES


@dataclass(frozen=True)
class DecoderInfo:
    name: str
    config: DecoderConfig
    device: torch.device
    dtype: torch.dtype
    num_parameters: int
    parameter_bytes: int
    max_length: int  # tokens the model can see at once: its positions


def load_decoder(
    folder: str | Path,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = torch.float32,
    *,
    name: str | None = None,
    max_bytes: int = DEFAULT_MAX_MODEL_BYTES,
) -> tuple[DecoderModel, WordPieceTokenizer, DecoderInfo]:
    """A decoder folder as an eval-mode DecoderModel on `device`, its tokenizer and a summary."""
    device = resolve_device(device) if isinstance(device, str) else device
    dtype = resolve_dtype(dtype) if isinstance(dtype, str) else dtype
    path = Path(folder)
    files.require_folder(path)
    config = read_decoder_config(path)
    needed = check_model_size(config, dtype, max_bytes)
    checked = check_folder(path, config)
    with torch.device("meta"):
        model = DecoderModel(config)
    model = model.to_empty(device="cpu")
    names = checked.names
    with open_tensors(path, {names[key]: checked.where[names[key]] for key in names}) as state:
        load_weights(model, assignments(config), state, names)
    if config.tie_word_embeddings:
        model.lm_head.weight = model.token_embeddings.weight
    model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    info = DecoderInfo(
        name=name or path.name,
        config=config,
        device=device,
        dtype=dtype,
        num_parameters=needed // dtype.itemsize,
        parameter_bytes=needed,
        max_length=config.max_positions,
    )
    return model, checked.tokenizer, info
