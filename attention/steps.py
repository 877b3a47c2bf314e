"""The step registry: every step of the traced pipeline, its tensor layout and what it means.

One list, in pipeline order. The service derives from it the step names its schema accepts, how
it cuts one sequence out of a batched step, how many numbers a step adds to an answer's cost,
and `GET /steps`; the README's step table is generated from it (`steps_table`) and a test keeps
them equal (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Layout = Literal["tokens", "head_queries", "head_keys", "head_matrix"]

LAYOUT_SHAPES: dict[Layout, str] = {
    "tokens": "B × L × d_model",  # one row per query token
    "head_queries": "B × H × L × d_k",  # one row per head and query
    "head_keys": "B × H_kv × S × d_k",  # one row per K/V head and key
    "head_matrix": "B × H × L × S",  # one cell per head, query and key
}


@dataclass(frozen=True)
class Step:
    name: str
    layout: Layout  # how the batched tensor is laid out
    shape: str  # one sequence's shape, as an answer carries it
    meaning: str


REGISTRY: tuple[Step, ...] = (
    Step("token_embeddings", "tokens", "L × d_model", "the token's vector"),
    Step("positional", "tokens", "L × d_model",
         "the additive positional encoding (zeros for none, rope, alibi)"),
    Step("inputs", "tokens", "L × d_model", "their sum, the embedded position layer"),
    Step("q", "head_queries", "H × L × d_k", "queries per head (after RoPE when configured)"),
    Step("k", "head_keys", "H_kv × S × d_k", "keys per K/V head (after RoPE when configured)"),
    Step("v", "head_keys", "H_kv × S × d_k", "values per K/V head"),
    Step("scores", "head_matrix", "H × L × S", "Q×Kᵀ"),
    Step("scaled_scores", "head_matrix", "H × L × S", "× 1/√d_k, or × `config.scale`"),
    Step("masked_scores", "head_matrix", "H × L × S",
         "plus masks and ALiBi; masked entries are `null`"),
    Step("attention", "head_matrix", "H × L × S", "softmax over keys"),
    Step("head_outputs", "head_queries", "H × L × d_k", "each head's weighted sum of values"),
    Step("concat", "tokens", "L × (H·d_k)", "the heads side by side"),
    Step("output", "tokens", "L × d_model", "the output projection"),
)  # fmt: skip
STEPS: tuple[str, ...] = tuple(step.name for step in REGISTRY)
LAYOUTS: dict[str, Layout] = {step.name: step.layout for step in REGISTRY}


@dataclass(frozen=True)
class Dims:
    """The sizes a batched step's shape is made of."""

    batch: int
    queries: int  # L, the longest query sequence
    keys: int  # S, the longest key sequence with any appended keys
    d_model: int
    heads: int
    kv_width: int  # H_kv · d_k


def step_elements(name: str, dims: Dims) -> int:
    """Numbers in the batched tensor of step `name`."""
    layout = LAYOUTS[name]
    if layout == "head_keys":
        return dims.batch * dims.keys * dims.kv_width
    if layout == "head_matrix":
        return dims.batch * dims.heads * dims.queries * dims.keys
    return dims.batch * dims.queries * dims.d_model  # H · d_k = d_model for queries' rows


def steps_table() -> str:
    """The README's table of steps, one row per step."""
    rows = ["| step | shape | what it is |", "|---|---|---|"]
    rows += [f"| `{step.name}` | {step.shape} | {step.meaning} |" for step in REGISTRY]
    return "\n".join(rows)
