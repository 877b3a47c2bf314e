"""Size checks that run before any tensor is allocated: past a limit the answer is 413.

The work estimate counts attention-sized elements, B·H·L·S, once for the computation and once
more for every H×L×S matrix the response carries (per-head weights, scores, ...), because
turning those into JSON costs far more than computing them.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import TooLarge
from app.schemas import AttentionRequest
from app.settings import Settings

ATTENTION_SIZED_STEPS = frozenset({"scores", "scaled_scores", "masked_scores", "attention"})
BYTES_PER_JSON_NUMBER = 10  # "-0.123456," and the like, measured on float32 responses


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
    _check_work(request, shape, settings)


def work_estimate(request: AttentionRequest, shape: Shape) -> int:
    """Elements the request makes the service compute and return, in attention-sized units."""
    config, output = request.config, request.output
    per_head = shape.batch * config.num_heads * shape.query_length * shape.key_length
    returned = float(len(ATTENTION_SIZED_STEPS.intersection(output.step_names())))
    returned += {"per_head": 1.0, "average": 1.0 / config.num_heads, "none": 0.0}[output.attention]
    width = max(config.d_model, config.kdim or 0, config.vdim or 0)
    module = 4 * width * width + config.vocab_size * config.d_model
    if config.positional_encoding == "learned":
        module += config.max_positions * config.d_model
    return int(per_head * (1 + returned)) + module


def _check_work(request: AttentionRequest, shape: Shape, settings: Settings) -> None:
    estimate = work_estimate(request, shape)
    if estimate > settings.max_work:
        megabytes = estimate * BYTES_PER_JSON_NUMBER / 1e6
        raise TooLarge(
            f"the request needs about {estimate:,} elements (B={shape.batch} × "
            f"H={request.config.num_heads} × L={shape.query_length} × S={shape.key_length} "
            f"per returned matrix, ≈ {megabytes:,.0f} MB of JSON), over the limit max_work="
            f"{settings.max_work:,}; ask for fewer steps, attention 'average' or 'none', or "
            "send fewer or shorter sequences"
        )


def at_most(what: str, value: int, limit: int, setting: str) -> None:
    if value > limit:
        raise TooLarge(f"{what} is {value:,}, over the limit {setting}={limit:,}")
