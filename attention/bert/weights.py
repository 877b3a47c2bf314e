"""A Hugging Face BERT, RoBERTa or DistilBERT state dict copied into a BertModel.

The weights file (model.safetensors) is opened lazily and read one tensor at a time; the
checkpoint's keys are mapped onto HuggingFace's BERT names (``bert.``/``roberta.`` prefixes,
gamma/beta, DistilBERT's own names), then onto ours. HuggingFace's separate query/key/value
Linear weights are packed into each MultiHeadAttention's ``in_proj_weight`` by
``attention.weights``. `expected_weight_shapes` says what the header must hold before any of
this runs (attention/bert/folder.py checks it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from attention.bert.config import BertConfig
from attention.bert.model import BertLayer, BertModel
from attention.errors import AttentionError, ParameterError
from attention.folders import files
from attention.folders.checkpoint import LazyTensors, safetensors_module
from attention.folders.safetensors_header import TensorEntry
from attention.weights import load_pytorch_state_dict

WEIGHTS_FILE = "model.safetensors"


def expected_weight_shapes(config: BertConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor the encoder reads, by HuggingFace's name (without ``bert.``), and its shape.

    The shapes come from a BertModel built on the meta device, which allocates nothing.
    """
    with torch.device("meta"):
        model = BertModel(config)
    shapes = {
        theirs: tuple(model.get_parameter(ours).shape)
        for ours, theirs in _plain_parameter_names(model).items()
    }
    width = (config.hidden_size,)
    for index in range(config.num_hidden_layers):
        for name in _ATTENTION_NAMES.values():
            shapes[f"encoder.layer.{index}.attention.{name}"] = width * 2
        for name in _ATTENTION_BIASES:
            shapes[f"encoder.layer.{index}.attention.{name}"] = width
    return shapes


@contextmanager
def open_weights(
    folder: Path, entries: Mapping[str, TensorEntry]
) -> Iterator[Mapping[str, Tensor]]:
    """The weights file's tensors, read one at a time on access (its header checked already:
    `check_folder`)."""
    path = folder / WEIGHTS_FILE
    safe_open, safetensor_error = safetensors_module()
    try:
        with safe_open(str(path), framework="pt") as handle:
            yield LazyTensors(dict.fromkeys(entries, handle))
    except OSError as error:
        raise files.file_error(path, folder, files.os_cause(error)) from None
    except safetensor_error as error:
        message = files.scrub(str(error), folder)
        raise files.file_error(path, folder, f"is not a safetensors file: {message}") from None


class _Renamed(Mapping[str, Tensor]):
    """`state` under the encoder's names: `names` maps ours to the checkpoint's."""

    def __init__(self, state: Mapping[str, Tensor], names: Mapping[str, str]) -> None:
        self._state, self._names = state, names

    def __getitem__(self, key: str) -> Tensor:
        return self._state[self._names[key]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def load_hf_state_dict(model: BertModel, state: Mapping[str, Tensor]) -> tuple[str, ...]:
    """Copy a HuggingFace BertModel state dict into `model`; return the keys left unused.

    `state` may be lazy (an open safetensors file): each tensor is looked up once.
    """
    renamed = _Renamed(state, hf_key_map(state))
    used: set[str] = set()
    for module_name, hf_name in _plain_parameter_names(model).items():
        _copy_parameter(model.get_parameter(module_name), renamed, hf_name)
        used.add(hf_name)
    if model.config.model_type == "distilbert":
        with torch.no_grad():  # no token types: their one row adds nothing
            model.embeddings.token_type_embeddings.weight.zero_()
    for index, layer in enumerate(model.layers):
        assert isinstance(layer, BertLayer)
        used |= _load_attention(layer, renamed, f"encoder.layer.{index}.attention.")
    return tuple(sorted(set(renamed) - used))


def hf_key_map(keys: Iterator[str] | Mapping[str, object]) -> dict[str, str]:
    """HuggingFace's encoder name -> the checkpoint's: BertFor... heads nest the encoder under
    ``bert.`` (``roberta.``), old checkpoints say gamma/beta for a LayerNorm's weight/bias,
    DistilBERT has names of its own."""
    names = {}
    for key in keys:
        # DistilBERT's names (with or without its `distilbert.` prefix) never occur in BERT's
        ours = _from_distilbert(key).removeprefix("bert.").removeprefix("roberta.")
        if ".LayerNorm." in ours:
            ours = ours.replace(".gamma", ".weight").replace(".beta", ".bias")
        names[ours] = key
    return names


_DISTILBERT_PARTS = (
    ("transformer.layer.", "encoder.layer."),
    (".attention.q_lin.", ".attention.self.query."),
    (".attention.k_lin.", ".attention.self.key."),
    (".attention.v_lin.", ".attention.self.value."),
    (".attention.out_lin.", ".attention.output.dense."),
    (".sa_layer_norm.", ".attention.output.LayerNorm."),
    (".ffn.lin1.", ".intermediate.dense."),
    (".ffn.lin2.", ".output.dense."),
    (".output_layer_norm.", ".output.LayerNorm."),
)
"""DistilBERT's names for BERT's tensors, part by part."""


def _from_distilbert(key: str) -> str:
    name = key.removeprefix("distilbert.")
    for theirs, ours in _DISTILBERT_PARTS:
        name = name.replace(theirs, ours)
    return name


def _plain_parameter_names(model: BertModel) -> dict[str, str]:
    """Our parameter name -> HuggingFace's, for everything but the attention projections."""
    names = {
        "embeddings.word_embeddings.weight": "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight": "embeddings.position_embeddings.weight",
    }
    if model.config.model_type != "distilbert":  # it has no token types: its one row stays 0
        names["embeddings.token_type_embeddings.weight"] = "embeddings.token_type_embeddings.weight"
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


_ATTENTION_NAMES = {
    "q_proj_weight": "self.query.weight",
    "k_proj_weight": "self.key.weight",
    "v_proj_weight": "self.value.weight",
    "out_proj.weight": "output.dense.weight",
}
"""MultiHeadAttention's E × E matrices -> HuggingFace's names under ``attention.``."""
_ATTENTION_BIASES = ("self.query.bias", "self.key.bias", "self.value.bias", "output.dense.bias")
"""The E-long biases: query/key/value go into in_proj_bias, output.dense's is out_proj.bias."""


def _load_attention(layer: BertLayer, state: Mapping[str, Tensor], prefix: str) -> set[str]:
    """query/key/value -> in_proj_weight and in_proj_bias, output.dense -> out_proj."""
    names = {**_ATTENTION_NAMES, "out_proj.bias": _ATTENTION_BIASES[3]}
    biases = [prefix + name for name in _ATTENTION_BIASES[:3]]
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
