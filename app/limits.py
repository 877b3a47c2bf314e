"""Size checks and cost estimates that run before any tensor is allocated.

Every request's cost is estimated in bytes from its sizes alone (docs/reliability.md, the memory
model): the peak memory of its computation (tensors computed and kept, the copies cut for the
answer, the encoded answer, a module not yet built) and the size of its answer in the chosen
encoding. Past `max_request_bytes` or `max_response_bytes` the answer is 413, before any work;
the memory budget of the worker (app.runtime.MemoryBudget) then holds the estimate while the
computation runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.encoding import MSGPACK
from app.errors import TooLarge
from app.schemas import AttentionRequest
from app.settings import Settings
from attention import AttentionConfig, Dims
from attention.cost import (
    forward_elements,
    layer_parameter_count,
    parameter_count,
    returned_elements,
)

ITEM_BYTES = {"float32": 4, "float64": 8}
# the longest JSON number orjson writes, with its comma: "-1.2345678e-05," and the float64 kind
JSON_NUMBER_BYTES = {"float32": 15, "float64": 25}
ROUNDED_NUMBER_EXTRA = 8  # "-", "0.", the comma and a few integer digits around the decimals
LABEL_OVERHEAD_BYTES = 4  # quotes and comma around a token label
BUILD_ITEM_BYTES = 4  # modules are drawn in float32, then converted: both copies live at once


def allocator_slack_bytes() -> int:
    """Freed memory the allocator keeps resident per thread arena (app.runtime)."""
    from app.runtime import TOP_PAD_BYTES  # runtime imports the errors this module raises too

    return TOP_PAD_BYTES


@dataclass(frozen=True)
class Shape:
    batch: int
    query_length: int  # longest query sequence
    key_length: int  # longest key sequence, with bias_k and the zero key


@dataclass(frozen=True)
class Estimate:
    """What a request costs, in bytes, known before it runs."""

    peak_bytes: int  # the most memory it holds at once
    response_bytes: int  # the encoded answer

    def describe(self) -> str:
        return (
            f"peak memory ≈ {self.peak_bytes / 2**20:,.1f} MiB, answer ≈ "
            f"{self.response_bytes / 2**20:,.1f} MiB"
        )


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


def check_text(request: AttentionRequest, settings: Settings) -> None:
    """`text` is counted before it is tokenized, string tokens before they are hashed."""
    if request.text is not None:
        texts = [request.text] if isinstance(request.text, str) else request.text
        characters = sum(len(text) for text in texts)
        at_most("text", characters, settings.max_text_chars, "max_text_chars", unit="characters")
    for field in ("sequences", "key_sequences"):
        _check_token_lengths(field, getattr(request, field), settings.max_token_chars)


def _check_token_lengths(field: str, sequences: Iterable[list[str] | list[int]] | None,
                         limit: int) -> None:  # fmt: skip
    for row, sequence in enumerate(sequences or ()):
        for position, token in enumerate(sequence):
            if isinstance(token, str) and len(token) > limit:
                raise TooLarge(
                    f"{field}.{row}.{position} is a token of {len(token):,} characters, over "
                    f"the limit max_token_chars={limit:,}"
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
    computed = forward_elements(config, dims, traced=bool(steps), weights=weights, cross=cross)
    returned = returned_elements(dims, steps, output.attention)
    dtype = request.config.dtype
    item = ITEM_BYTES[dtype]
    built = 0
    if not module_cached:
        built = parameter_count(config) * (item + (BUILD_ITEM_BYTES if item != 4 else 0))
    if request.parameters is not None:
        built += 2 * layer_parameter_count(config) * item  # the parsed numbers and the layer
    answer = returned * number_bytes(media_type, dtype, output.precision) + _label_bytes(request)
    return peak_estimate(item, built=built, forward=computed, held=returned, answer=answer)


def peak_estimate(item: int, *, built: int, forward: int, held: int, answer: int) -> Estimate:
    """The most a request holds at once: what it builds, then the larger of its forward pass
    (`forward` numbers) and its encoding (the `held` numbers it cuts from, and the answer's
    bytes), plus what the allocator keeps of freed memory (docs/reliability.md)."""
    encoding = held * item + answer
    peak = built + max(forward * item, encoding) + allocator_slack_bytes()
    return Estimate(peak_bytes=peak, response_bytes=answer)


def number_bytes(media_type: str, dtype: str, precision: int | None) -> int:
    """The most bytes one number of an answer takes in the encoding."""
    if media_type == MSGPACK:
        return ITEM_BYTES[dtype]
    widest = JSON_NUMBER_BYTES[dtype]
    return widest if precision is None else min(widest, precision + ROUNDED_NUMBER_EXTRA)


def _label_bytes(request: AttentionRequest) -> int:
    """Token labels are echoed twice (tokens and key_tokens)."""
    characters = 0
    for sequences in (request.sequences, request.key_sequences):
        for sequence in sequences or ():
            characters += sum(len(str(token)) + LABEL_OVERHEAD_BYTES for token in sequence)
    if request.text is not None:
        texts = [request.text] if isinstance(request.text, str) else request.text
        # at most one token a character
        characters += sum(len(text) * (1 + LABEL_OVERHEAD_BYTES) for text in texts)
    return 2 * characters


def check_estimate(estimate: Estimate, settings: Settings, advice: str) -> None:
    """413 past either limit, naming the estimate, the limit and what to ask for instead."""
    for what, value, limit, setting in (
        ("answer", estimate.response_bytes, settings.max_response_bytes, "max_response_bytes"),
        ("peak memory", estimate.peak_bytes, settings.max_request_bytes, "max_request_bytes"),
    ):
        if value > limit:
            raise TooLarge(
                f"the request's {what} is estimated at {value:,} bytes ({estimate.describe()}), "
                f"over the limit {setting}={limit:,}; {advice}"
            )


def check_module(config: AttentionConfig, dtype: str, settings: Settings) -> None:
    """A seeded module larger than the whole module cache is never built (413)."""
    size = parameter_count(config) * ITEM_BYTES[dtype]
    if size > settings.module_cache_bytes:
        raise TooLarge(
            f"the model for this config holds {size:,} bytes (vocab_size × d_model, the "
            f"projections and any learned positions), over the limit module_cache_bytes="
            f"{settings.module_cache_bytes:,}; lower config.vocab_size, d_model or max_positions"
        )


def at_most(what: str, value: int, limit: int, setting: str, unit: str = "") -> None:
    if value > limit:
        suffix = f" {unit}" if unit else ""
        raise TooLarge(f"{what} is {value:,}{suffix}, over the limit {setting}={limit:,}")
