"""A decoder's size from its configuration alone: parameters by part, their bytes in a dtype,
and the refusal of a model over the byte limit before anything is allocated."""

from __future__ import annotations

import torch

from attention.bert.config import format_bytes
from attention.decoder.config import DecoderConfig
from attention.folders.errors import ModelSizeError


def parameter_counts(config: DecoderConfig) -> dict[str, int]:
    """The decoder's parameters by part, as ``DecoderModel(config)`` allocates them."""
    width, inner, layers = config.hidden_size, config.intermediate_size, config.num_layers
    query, kv = config.num_heads * config.head_dim, config.num_kv_heads * config.head_dim
    attention = 2 * query * width + 2 * kv * width
    if config.qkv_bias or config.output_bias:  # one switch in MultiHeadAttention: both biases
        attention += query + 2 * kv + width
    norm = width if config.rms_norm else 2 * width
    if config.gated:
        mlp = 3 * width * inner + (2 * inner + width if config.mlp_bias else 0)
    else:
        mlp = 2 * width * inner + inner + width
    counts = {
        "token_embeddings": config.vocab_size * width,
        "layers": layers * (attention + 2 * norm + mlp),
        "final_norm": norm,
    }
    if config.rope_theta is None:
        counts["position_embeddings"] = config.max_positions * width
    if not config.tie_word_embeddings:
        counts["lm_head"] = config.vocab_size * width
    return counts


def num_parameters(config: DecoderConfig) -> int:
    return sum(parameter_counts(config).values())


def parameter_bytes(config: DecoderConfig, dtype: torch.dtype = torch.float32) -> int:
    return num_parameters(config) * dtype.itemsize


def check_model_size(config: DecoderConfig, dtype: torch.dtype, max_bytes: int) -> int:
    """The parameter bytes in `dtype`; ModelSizeError past `max_bytes`, naming the largest part."""
    needed = parameter_bytes(config, dtype)
    if needed <= max_bytes:
        return needed
    counts = parameter_counts(config)
    largest = max(counts, key=lambda part: counts[part])
    raise ModelSizeError(
        f"config.json describes {num_parameters(config):,} parameters, {format_bytes(needed)} "
        f"in {str(dtype).removeprefix('torch.')}, over the limit of {format_bytes(max_bytes)} "
        f"(largest part: {largest}, {counts[largest]:,} parameters)",
        needed_bytes=needed,
        max_bytes=max_bytes,
    )
