"""The random model's checks and estimate: its sizes against the settings, its one layer's pass,
its answer and any module still to build (the memory model: docs/reliability.md)."""

from __future__ import annotations

from dataclasses import dataclass

from app.http.errors import TooLarge
from app.http.schemas import MAX_VOCAB, AttentionRequest
from app.pipelines.cost import (
    ITEM_BYTES,
    LABEL_OVERHEAD_BYTES,
    Estimate,
    at_most,
    number_bytes,
    peak_estimate,
)
from app.pipelines.shaping import batch_shaping, computes_in_blocks
from app.serving.settings import Settings
from attention import AttentionConfig, Dims
from attention.cost import (
    forward_elements,
    layer_parameter_count,
    parameter_count,
    returned_elements,
)

ID_DIGITS = len(str(MAX_VOCAB - 1))  # the widest token id the schema lets through
BUILD_ITEM_BYTES = 4  # modules are drawn in float32, then converted: both copies live at once


@dataclass(frozen=True)
class Shape:
    batch: int
    query_length: int  # longest query sequence
    key_length: int  # longest key sequence, with bias_k and the zero key


def check_limits(request: AttentionRequest, shape: Shape, settings: Settings) -> None:
    config = request.config
    at_most("batch size", shape.batch, settings.max_batch, "max_batch")
    at_most("tokens per sequence", shape.query_length, settings.max_tokens, "max_tokens")
    at_most("keys per sequence", shape.key_length, settings.max_tokens, "max_tokens")
    for name in ("d_model", "kdim", "vdim"):
        value = getattr(config, name)
        if value is not None:
            at_most(f"config.{name}", value, settings.max_d_model, "max_d_model")
    at_most("config.num_heads", config.num_heads, settings.max_heads, "max_heads")


def check_module(config: AttentionConfig, dtype: str, settings: Settings) -> None:
    """A seeded module larger than the whole module cache is never built (413)."""
    size = parameter_count(config) * ITEM_BYTES[dtype]
    if size > settings.module_cache_bytes:
        raise TooLarge(
            f"the model for this config holds {size:,} bytes (vocab_size × d_model, the "
            f"projections and any learned positions), over the limit module_cache_bytes="
            f"{settings.module_cache_bytes:,}; lower config.vocab_size, d_model or max_positions"
        )


def random_dims(shape: Shape, config: AttentionConfig) -> Dims:
    return Dims(
        batch=shape.batch,
        queries=shape.query_length,
        keys=shape.key_length,
        d_model=config.d_model,
        heads=config.num_heads,
        kv_width=config.kv_dim,
    )


def random_estimate(
    request: AttentionRequest,
    shape: Shape,
    config: AttentionConfig,
    media_type: str,
    *,
    module_cached: bool,
) -> Estimate:
    """The random model's request: its one layer's pass, the answer, a module still to build."""
    dims = random_dims(shape, config)
    output = request.output
    steps = output.step_names()
    weights = output.attention != "none" or output.metrics
    cross = request.key_sequences is not None or request.key_embeddings is not None
    shaping = batch_shaping(output, shape.query_length)
    blocked = computes_in_blocks(output)
    computed = forward_elements(
        config, dims, traced=bool(steps), weights=weights, cross=cross, blocked=blocked,
        attn_mask=request.attn_mask is not None,
    )  # fmt: skip
    returned = returned_elements(dims, steps, output.attention, shaping)
    if blocked:  # the shaped weights grow beside the pass
        computed += returned
    if output.parameters:  # the layer's weights, copied out beside the answer
        returned += layer_parameter_count(config)
    dtype = request.config.dtype
    item = ITEM_BYTES[dtype]
    built = 0
    if not module_cached:
        built = parameter_count(config) * (item + (BUILD_ITEM_BYTES if item != 4 else 0))
    if request.parameters is not None:
        built += 2 * layer_parameter_count(config) * item  # the parsed numbers and the layer
    answer = returned * number_bytes(media_type, dtype, output.precision, output.dtype)
    answer += _label_bytes(request)
    return peak_estimate(item, dims, built=built, forward=computed, held=returned, answer=answer)


def _label_characters(sequence: list[str] | list[int]) -> int:
    """Characters of a sequence's labels, at C speed: ids are below 2^24, at most 8 digits."""
    if sequence and isinstance(sequence[0], str):
        return sum(map(len, sequence))
    return ID_DIGITS * len(sequence)


def _label_bytes(request: AttentionRequest) -> int:
    """Token labels are echoed twice (tokens and key_tokens)."""
    characters = 0
    for sequences in (request.sequences, request.key_sequences):
        for sequence in sequences or ():
            characters += LABEL_OVERHEAD_BYTES * len(sequence) + _label_characters(sequence)
    if request.text is not None:
        texts = [request.text] if isinstance(request.text, str) else request.text
        # at most one token a character
        characters += sum(len(text) * (1 + LABEL_OVERHEAD_BYTES) for text in texts)
    return 2 * characters
