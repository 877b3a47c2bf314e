"""The step registry: every step of the traced pipeline, its tensor layout and what it means.

One list, in pipeline order. The service derives from it the step names its schema accepts, how
it cuts one sequence out of a batched step, and how many numbers a step adds to an answer; the
README's step table is checked against it (docs/architecture.md).
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
    layout: Layout
    meaning: str


REGISTRY: tuple[Step, ...] = (
    Step("token_embeddings", "tokens", "each token's vector (step 1: embedding)"),
    Step("positional", "tokens", "the positional encoding added to it (zeros for RoPE, ALiBi)"),
    Step("inputs", "tokens", "the embedded position layer: token embedding + position"),
    Step("q", "head_queries", "queries: the linear layer W_Q, split into heads (RoPE-rotated)"),
    Step("k", "head_keys", "keys: the linear layer W_K, split into K/V heads (RoPE-rotated)"),
    Step("v", "head_keys", "values: the linear layer W_V, split into K/V heads"),
    Step("scores", "head_matrix", "Q × Kᵀ, per head"),
    Step("scaled_scores", "head_matrix", "the scores scaled by 1/√d_k (or config.scale)"),
    Step("masked_scores", "head_matrix", "plus masks and biases (causal, window, padding, ALiBi)"),
    Step("attention", "head_matrix", "softmax over the keys: the attention weights"),
    Step("head_outputs", "head_queries", "each head's weighted sum of the value rows"),
    Step("concat", "tokens", "the heads' outputs side by side (concatenation)"),
    Step("output", "tokens", "the output projection W_O"),
)
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
