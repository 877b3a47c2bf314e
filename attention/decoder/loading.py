"""Loading a Hugging Face decoder folder: config.json, model.safetensors (or shards with their
index) and tokenizer.json, checked in that order before anything is allocated (the folder, the
configuration and the model's size, the tokenizer against the vocabulary, every safetensors
header against the shapes config.json implies); only then are the weights read, one at a time.

Hugging Face's separate q/k/v projections are packed into each MultiHeadAttention's
``in_proj_weight``; GPT-2's Conv1D weights are stored transposed (in × out) and are turned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from attention.bert.tokenizer import WordPieceTokenizer
from attention.decoder.config import DecoderConfig, check_model_size
from attention.decoder.model import DecoderModel
from attention.device import resolve_device, resolve_dtype
from attention.errors import ConfigError, ParameterError
from attention.folders import files
from attention.folders.checkpoint import INDEX_FILE, WEIGHTS_FILE, open_tensors, read_entries
from attention.folders.checkpoint import weight_files as find_weight_files
from attention.folders.errors import ModelFileError
from attention.folders.files import DEFAULT_MAX_MODEL_BYTES
from attention.folders.safetensors_header import check_tensors

CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
OTHER_WEIGHTS = {
    "pytorch_model.bin": "PyTorch pickle weights",
    "tf_model.h5": "TensorFlow weights",
    "flax_model.msgpack": "Flax weights",
}
OTHER_TOKENIZERS = {
    "tokenizer.model": "a SentencePiece model without tokenizer.json",
    "vocab.json": "a BPE vocabulary without tokenizer.json",
}


@dataclass(frozen=True)
class DecoderInfo:
    name: str
    config: DecoderConfig
    device: torch.device
    dtype: torch.dtype
    num_parameters: int
    parameter_bytes: int
    max_length: int  # tokens the model can see at once: its positions


@dataclass(frozen=True)
class Assignment:
    """One of our parameters from the checkpoint's tensors: several are concatenated (q, k, v),
    a Conv1D weight is transposed."""

    ours: str
    theirs: tuple[str, ...]
    transpose: bool = False


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
        _load(model, assignments(config), state, names)
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


@dataclass(frozen=True)
class CheckedFolder:
    """What `check_folder` read: the tokenizer, and where each tensor the decoder needs is."""

    tokenizer: WordPieceTokenizer
    names: dict[str, str]  # Hugging Face's name -> the file's (prefixed or not)
    where: dict[str, Path]  # the file's name -> the file holding it


def check_folder(folder: Path, config: DecoderConfig) -> CheckedFolder:
    """Everything that can be checked before a weight is read, past config.json and the size:
    the tokenizer against vocab_size, the weight files, every safetensors header against the
    file's size and against the tensors config.json implies. The service's start-up scan calls
    it too, so that every worker refuses such a folder from the first request."""
    tokenizer = read_tokenizer(folder, config)
    tensor_files = find_weight_files(folder)
    if tensor_files is None:
        raise _missing(
            folder,
            WEIGHTS_FILE,
            "weights",
            OTHER_WEIGHTS,
            "save the model with safe_serialization=True",
        )
    entries, where = read_entries(folder, tensor_files)
    names = _file_names(config, entries)
    label = WEIGHTS_FILE if "" in tensor_files else INDEX_FILE
    check_tensors(entries, expected_shapes(config), names, label, config.model_type)
    return CheckedFolder(tokenizer, names, where)


def read_decoder_config(folder: Path) -> DecoderConfig:
    raw = files.read_required_object(folder / CONFIG_FILE, folder, files.CONFIG_ROLE)
    try:
        return DecoderConfig.from_dict(raw)
    except ConfigError as error:
        raise ConfigError(f"{CONFIG_FILE}: {error.message}", field=error.field) from None


def read_tokenizer(folder: Path, config: DecoderConfig) -> WordPieceTokenizer:
    path = folder / TOKENIZER_FILE
    found = files.kind(path, folder)
    if found is None:
        raise _missing(
            folder,
            TOKENIZER_FILE,
            "tokenizer",
            OTHER_TOKENIZERS,
            "save a fast tokenizer to get tokenizer.json",
        )
    files.require_regular(path, folder, found)
    tokenizer = WordPieceTokenizer.from_file(path, max_length=config.max_positions)
    if tokenizer.id_count > config.vocab_size:
        raise ConfigError(
            f"{TOKENIZER_FILE} has ids up to {tokenizer.id_count - 1} but {CONFIG_FILE} has "
            f"vocab_size={config.vocab_size}: the ids from {config.vocab_size} on would have "
            "no embedding (the tokenizer and the config are of different models)",
            field="vocab_size",
        )
    return tokenizer


def _missing(
    folder: Path, file: str, role: str, others: Mapping[str, str], advice: str
) -> ModelFileError:
    for other, what in others.items():
        if files.kind(folder / other, folder) is not None:
            return files.file_error(
                folder / file, folder,
                f"is missing; the folder has {other} ({what}), a format this loader does not "
                f"read: {advice}",
            )  # fmt: skip
    return files.file_error(folder / file, folder, f"is missing: the model's {role} file")


# -- the checkpoint's names and shapes ------------------------------------------------------------


def assignments(config: DecoderConfig) -> list[Assignment]:
    """Where each of our parameters comes from, in Hugging Face's names (without the
    ``transformer.`` or ``model.`` prefix)."""
    return _gpt2_assignments(config) if config.model_type == "gpt2" else _rotary_assignments(config)


def _gpt2_assignments(config: DecoderConfig) -> list[Assignment]:
    plan = [
        Assignment("token_embeddings.weight", ("wte.weight",)),
        Assignment("position_embeddings.weight", ("wpe.weight",)),
        *_both("final_norm", "ln_f"),
    ]
    for i in range(config.num_layers):
        ours, theirs = f"layers.{i}.", f"h.{i}."
        plan += [
            *_both(ours + "attention_norm", theirs + "ln_1"),
            Assignment(ours + "attention.in_proj_weight", (theirs + "attn.c_attn.weight",), True),
            Assignment(ours + "attention.in_proj_bias", (theirs + "attn.c_attn.bias",)),
            Assignment(ours + "attention.out_proj.weight", (theirs + "attn.c_proj.weight",), True),
            Assignment(ours + "attention.out_proj.bias", (theirs + "attn.c_proj.bias",)),
            *_both(ours + "mlp_norm", theirs + "ln_2"),
            Assignment(ours + "mlp.expand.weight", (theirs + "mlp.c_fc.weight",), True),
            Assignment(ours + "mlp.expand.bias", (theirs + "mlp.c_fc.bias",)),
            Assignment(ours + "mlp.project.weight", (theirs + "mlp.c_proj.weight",), True),
            Assignment(ours + "mlp.project.bias", (theirs + "mlp.c_proj.bias",)),
        ]
    return plan + _head(config)


def _rotary_assignments(config: DecoderConfig) -> list[Assignment]:
    plan = [
        Assignment("token_embeddings.weight", ("embed_tokens.weight",)),
        Assignment("final_norm.weight", ("norm.weight",)),
    ]
    for i in range(config.num_layers):
        ours, theirs = f"layers.{i}.", f"layers.{i}."
        attention = theirs + "self_attn."
        qkv = tuple(f"{attention}{p}_proj" for p in "qkv")
        plan += [
            Assignment(ours + "attention_norm.weight", (theirs + "input_layernorm.weight",)),
            Assignment(ours + "attention.in_proj_weight", tuple(f"{n}.weight" for n in qkv)),
            Assignment(ours + "attention.out_proj.weight", (attention + "o_proj.weight",)),
            Assignment(ours + "mlp_norm.weight", (theirs + "post_attention_layernorm.weight",)),
        ]
        if config.qkv_bias:
            plan.append(
                Assignment(ours + "attention.in_proj_bias", tuple(f"{n}.bias" for n in qkv))
            )
        if config.output_bias:
            plan.append(Assignment(ours + "attention.out_proj.bias", (attention + "o_proj.bias",)))
        for part in ("gate", "up", "down"):
            names = [("weight", f"{theirs}mlp.{part}_proj.weight")]
            if config.mlp_bias:
                names.append(("bias", f"{theirs}mlp.{part}_proj.bias"))
            plan += [Assignment(f"{ours}mlp.{part}.{kind}", (name,)) for kind, name in names]
    return plan + _head(config)


def _both(ours: str, theirs: str) -> list[Assignment]:
    return [Assignment(f"{ours}.{kind}", (f"{theirs}.{kind}",)) for kind in ("weight", "bias")]


def _head(config: DecoderConfig) -> list[Assignment]:
    return [] if config.tie_word_embeddings else [Assignment("lm_head.weight", ("lm_head.weight",))]


def expected_shapes(config: DecoderConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor the decoder reads, by Hugging Face's name, and the shape config.json implies.

    Our shapes come from a model on the meta device (nothing allocated); a concatenation is
    split by the rows of each part, a Conv1D weight turned.
    """
    with torch.device("meta"):
        model = DecoderModel(config)
    query = config.num_heads * config.head_dim
    kv = config.num_kv_heads * config.head_dim
    shapes: dict[str, tuple[int, ...]] = {}
    for item in assignments(config):
        shape = tuple(model.get_parameter(item.ours).shape)
        if len(item.theirs) == 3:  # q, k, v: rows query, kv, kv
            for rows, name in zip((query, kv, kv), item.theirs, strict=True):
                shapes[name] = (rows, *shape[1:])
        else:
            shapes[item.theirs[0]] = shape[::-1] if item.transpose else shape
    return shapes


def _file_names(config: DecoderConfig, entries: Mapping[str, object]) -> dict[str, str]:
    """Hugging Face's name -> the file's: the base model's prefix (``transformer.`` for GPT-2,
    ``model.`` for the others) is there in a ...ForCausalLM checkpoint, not in a bare model's."""
    prefix = "transformer." if config.model_type == "gpt2" else "model."
    names = {}
    for name in expected_shapes(config):
        prefixed = prefix + name
        names[name] = prefixed if prefixed in entries and name != "lm_head.weight" else name
    return {name: file_name for name, file_name in names.items() if file_name in entries}


def _load(
    model: DecoderModel,
    plan: list[Assignment],
    state: Mapping[str, Tensor],
    names: Mapping[str, str],
) -> None:
    """Copy every tensor in, checked for NaN and infinities; parameters no tensor fills (Qwen2's
    output bias, which it lacks) are zeros."""
    filled = set()
    with torch.no_grad():
        for item in plan:
            parts = []
            for theirs in item.theirs:
                tensor = state[names[theirs]]
                if not bool(torch.isfinite(tensor).all()):
                    raise ParameterError(
                        f"{names[theirs]} holds NaN or infinite values", field=theirs
                    )
                parts.append(tensor.t() if item.transpose else tensor)
            model.get_parameter(item.ours).copy_(torch.cat(parts) if len(parts) > 1 else parts[0])
            filled.add(item.ours)
        for parameter_name, parameter in model.named_parameters():
            if parameter_name not in filled:
                nn.init.zeros_(parameter)
