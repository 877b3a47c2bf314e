"""A Hugging Face decoder checkpoint's tensors copied into a DecoderModel.

Each of our parameters is assigned the checkpoint's tensors it comes from (`assignments`):
Hugging Face's separate q/k/v projections are concatenated into each MultiHeadAttention's
``in_proj_weight``; GPT-2's Conv1D weights are stored transposed (in × out) and are turned.
`expected_shapes` says what the headers must hold before any of this runs
(attention/decoder/folder.py checks them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attention.decoder.config import DecoderConfig
from attention.decoder.model import DecoderModel
from attention.errors import ParameterError


@dataclass(frozen=True)
class Assignment:
    """One of our parameters from the checkpoint's tensors: several are concatenated (q, k, v),
    a Conv1D weight is transposed."""

    ours: str
    theirs: tuple[str, ...]
    transpose: bool = False


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


def file_names(config: DecoderConfig, entries: Mapping[str, object]) -> dict[str, str]:
    """Hugging Face's name -> the file's: the base model's prefix (``transformer.`` for GPT-2,
    ``model.`` for the others) is there in a ...ForCausalLM checkpoint, not in a bare model's."""
    prefix = "transformer." if config.model_type == "gpt2" else "model."
    names = {}
    for name in expected_shapes(config):
        prefixed = prefix + name
        names[name] = prefixed if prefixed in entries and name != "lm_head.weight" else name
    return {name: file_name for name, file_name in names.items() if file_name in entries}


def load_weights(
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
