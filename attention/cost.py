"""What a forward pass costs, from the configuration and the sizes alone, before anything runs.

Counts are in numbers (elements); the caller multiplies by the dtype's size. They are upper
bounds of what the pass allocates and holds at its peak, checked against measured peaks in
tests/attention/test_cost.py; the service turns them into bytes and limits (docs/reliability.md).
"""

from __future__ import annotations

from dataclasses import replace

from attention.config import AttentionConfig
from attention.shaping import Shaping, query_block_rows
from attention.steps import STEPS, Dims, step_elements

# (B, H, L, S) tensors alive at once at the peak of each path: scores, scaled, masked, the
# weights and the masked softmax's temporary when traced; the scores (scaled in place) and the
# weights without a trace; the fused kernel's one matrix (its math fallback)
TRACED_MATRICES = 5
WEIGHTS_MATRICES = 2
FUSED_MATRICES = 1
# (B, L, ·) tensors of a pass: embeddings, inputs, the packed Q/K/V projection (three wide),
# head outputs and output; cross-attention adds its keys, k and v over S keys
TOKEN_ROW_TENSORS = 6
KEY_ROW_TENSORS = 3


def parameter_count(config: AttentionConfig) -> int:
    """Numbers in the seeded model: the layer's projections and biases, the id table and the
    learned position table (tests/attention/test_cost.py compares with the built module)."""
    d_model, kv_width = config.d_model, config.kv_dim
    projections = 2 * d_model * d_model + kv_width * (config.key_dim + config.value_dim)
    biases = 2 * d_model + 2 * kv_width if config.bias else 0
    extra = 2 * kv_width if config.add_bias_kv else 0
    tokens = config.vocab_size * d_model
    positions = config.max_positions * d_model if config.positional_encoding == "learned" else 0
    return projections + biases + extra + tokens + positions


def layer_parameter_count(config: AttentionConfig) -> int:
    """Numbers in one MultiHeadAttention layer alone (a request's own `parameters`)."""
    positions = config.max_positions * config.d_model
    learned = config.positional_encoding == "learned"
    return parameter_count(config) - config.vocab_size * config.d_model - learned * positions


def forward_elements(
    config: AttentionConfig,
    dims: Dims,
    *,
    traced: bool,
    weights: bool,
    cross: bool = False,
    blocked: bool = False,
    attn_mask: bool = False,
) -> int:
    """Numbers the pass holds at its peak: its matrices, and every token- and key-row tensor
    (`cross`: keys and values of their own, not the queries'). Checked against measured peaks
    by `python -m benchmarks.memory` (docs/reliability.md). `blocked`: the weights computed per
    block of queries (a weights sink), its matrices a block's rows only, plus one whole
    (B, H, L, S) bias when masks (`attn_mask`: the request's own) or ALiBi make one."""
    matrices = TRACED_MATRICES if traced else WEIGHTS_MATRICES if weights else FUSED_MATRICES
    matrix = step_elements("attention", dims)
    whole_bias = 0
    if blocked:
        rows = min(dims.queries, query_block_rows(dims.batch, dims.heads, dims.keys))
        whole_bias = matrix if attn_mask or _has_bias_matrix(config) else 0
        matrix = step_elements("attention", replace(dims, queries=rows))
        matrices = WEIGHTS_MATRICES + 3  # scores, weights, the masked copy, the shaper's copies
    rows = TOKEN_ROW_TENSORS * step_elements("inputs", dims)
    width = max(config.key_dim, config.value_dim, config.kv_dim)
    key_rows = KEY_ROW_TENSORS * dims.batch * dims.keys * width if cross else 0
    return matrices * matrix + whole_bias + rows + key_rows


def _has_bias_matrix(config: AttentionConfig) -> bool:
    """Whether the configuration makes the pass build an (L, S) bias or larger."""
    return config.causal or config.window is not None or config.positional_encoding == "alibi"


def shaped_elements(dims: Dims, shaping: Shaping) -> int:
    """Numbers of shaped weights: the kept heads and queries, dense or as top-k triples (key,
    weight; int64 keys count twice) and masses, and two pooled grids with their bounds."""
    heads = len(shaping.heads) if shaping.heads is not None else dims.heads
    heads = 1 if shaping.average else heads
    queries = len(shaping.queries) if shaping.queries is not None else dims.queries
    per_head = 0 if shaping.reduces else queries * dims.keys
    if shaping.top_k is not None:
        per_head += queries * (3 * min(shaping.top_k, dims.keys) + 1)
    if shaping.pool is not None:
        cells = min(shaping.pool, queries) * min(shaping.pool, dims.keys)
        per_head += 2 * cells + 2 * (shaping.pool + 1)
    return dims.batch * heads * per_head


def returned_elements(
    dims: Dims, steps: tuple[str, ...], attention: str, shaping: Shaping | None = None
) -> int:
    """Numbers an answer carries: the output, the attention as asked (and shaped), each step."""
    weights = 0
    if attention != "none" and shaping is not None:
        weights = shaped_elements(dims, replace(shaping, average=attention == "average"))
    elif attention == "per_head":
        weights = step_elements("attention", dims)
    elif attention == "average":
        weights = dims.batch * dims.queries * dims.keys
    traced = sum(step_elements(name, dims) for name in steps if name in STEPS)
    return step_elements("output", dims) + weights + traced
