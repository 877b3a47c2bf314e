"""Size checks and cost estimates that run before any tensor is allocated.

Every request's cost is estimated in bytes from its sizes alone (docs/reliability.md, the memory
model): the peak memory of its computation (tensors computed and kept, the copies cut for the
answer, the encoded answer, a module not yet built) and the size of its answer in the chosen
encoding. Past `max_request_bytes` or `max_response_bytes` the answer is 413, before any work;
the memory budget of the worker (app.serving.runtime.MemoryBudget) then holds the estimate while the
computation runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from app.http.encoding import MSGPACK
from app.http.errors import TooLarge
from app.http.schemas import AttentionRequest
from app.serving.settings import Settings
from attention import Dims

ITEM_BYTES = {"float32": 4, "float64": 8, "bfloat16": 2}
# the type of an answer's arrays: numpy has no bfloat16, so those numbers go out as float32
ANSWER_DTYPE = {"float32": "float32", "float64": "float64", "bfloat16": "float32"}
FLOAT16_BYTES = 2
# the longest JSON number orjson writes, with its comma: "-1.2345678e-05," and the float64 kind
JSON_NUMBER_BYTES = {"float32": 15, "float64": 25}
ROUNDED_NUMBER_EXTRA = 8  # "-", "0.", the comma and a few integer digits around the decimals
LABEL_OVERHEAD_BYTES = 4  # quotes and comma around a token label
PARSED_BODY_FACTOR = 8  # 20 MiB of `embeddings` held 146 MiB parsed: 7.3× (docs/reliability.md)


@cache
def allocator_slack_bytes() -> int:
    """Freed memory the allocator keeps resident per thread arena (app.serving.runtime)."""
    from app.serving.runtime import (
        TOP_PAD_BYTES,  # runtime imports the errors this module raises too
    )

    return TOP_PAD_BYTES


@dataclass(frozen=True)
class Estimate:
    """What a request costs, in bytes, known before it runs."""

    peak_bytes: int  # the most memory it holds at once
    response_bytes: int  # the encoded answer
    sizes: str = ""  # what it was computed from, "B=2 × H=4 × L=8 × S=8"

    def describe(self) -> str:
        sizes = f"{self.sizes}: " if self.sizes else ""
        return (
            f"{sizes}peak memory ≈ {self.peak_bytes / 2**20:,.1f} MiB, answer ≈ "
            f"{self.response_bytes / 2**20:,.1f} MiB"
        )


def parsed_body_bytes(body_bytes: int) -> int:
    """What a body holds once parsed into Python objects: numbers become floats in lists."""
    return PARSED_BODY_FACTOR * body_bytes


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
    # on the event loop, for up to millions of tokens: the common case at C speed (map, max),
    # a Python loop only to name an offender
    for row, sequence in enumerate(sequences or ()):
        if not sequence or not isinstance(sequence[0], str) or max(map(len, sequence)) <= limit:
            continue  # a sequence is all ids or all strings (the schema)
        position, token = next((i, t) for i, t in enumerate(sequence) if len(str(t)) > limit)
        raise TooLarge(
            f"{field}.{row}.{position} is a token of {len(str(token)):,} characters, over "
            f"the limit max_token_chars={limit:,}"
        )


def peak_estimate(
    item: int, dims: Dims, *, built: int, forward: int, held: int, answer: int
) -> Estimate:
    """The most a request holds at once: what it builds, then the larger of its forward pass
    (`forward` numbers) and its encoding (the `held` numbers it cuts from, and the answer's
    bytes), plus what the allocator keeps of freed memory (docs/reliability.md)."""
    encoding = held * held_item_bytes(item) + answer
    peak = built + max(forward * item, encoding) + allocator_slack_bytes()
    sizes = f"B={dims.batch} × H={dims.heads} × L={dims.queries} × S={dims.keys}"
    return Estimate(peak_bytes=peak, response_bytes=answer, sizes=sizes)


def held_item_bytes(item: int) -> int:
    """A cut number's bytes: a bfloat16 one (2 bytes) is cut, then copied to float32 beside it."""
    return item + ITEM_BYTES["float32"] if item == ITEM_BYTES["bfloat16"] else item


def number_bytes(
    media_type: str, dtype: str, precision: int | None, array_dtype: str = "float32"
) -> int:
    """The most bytes one number of an answer takes in the encoding (MessagePack: float16
    arrays when `output.dtype` asks for them)."""
    dtype = ANSWER_DTYPE[dtype]
    if media_type == MSGPACK:
        return FLOAT16_BYTES if array_dtype == "float16" else ITEM_BYTES[dtype]
    widest = JSON_NUMBER_BYTES[dtype]
    return widest if precision is None else min(widest, precision + ROUNDED_NUMBER_EXTRA)


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


def at_most(what: str, value: int, limit: int, setting: str, unit: str = "") -> None:
    if value > limit:
        suffix = f" {unit}" if unit else ""
        raise TooLarge(f"{what} is {value:,}{suffix}, over the limit {setting}={limit:,}")
