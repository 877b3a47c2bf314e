"""Answer models of the API: what POST /attention, GET /steps and the errors return.

They document the answers in the OpenAPI schema (the pipelines write the answers themselves,
app/pipelines/answer.py); `results[i].output`, `.attention` and `.steps` are the contract clients
and frontends rely on (docs/architecture.md). The request models are in app/http/schemas.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Numbers = Annotated[Any, Field(description="Nested arrays of numbers; null where not finite")]


class HeadMetrics(BaseModel):
    entropy: Numbers = Field(
        description="Per head (H; Nl × H for pretrained models): mean entropy of a query's "
        "weights, in nats",
    )  # fmt: skip
    mean_distance: Numbers = Field(
        description="Per head: mean |query - key| position distance, weighted by attention"
    )
    top_key: Numbers = Field(
        description="H × L (Nl × H × L): the key each query attends to most; -1 for a query "
        "that could attend to no key",
    )  # fmt: skip


class SequenceResult(BaseModel):
    tokens: list[str | int] = Field(description="The query tokens, unpadded")
    key_tokens: list[str | int] = Field(description="The keys, with <bias_k> and <zero_attn> last")
    output: Numbers = Field(description="L × d_model")
    attention: Numbers | None = Field(description="H × L × S, L × S (average) or null")
    steps: dict[str, Numbers] = Field(
        description="Requested steps, shapes as in GET /steps (the step registry)"
    )
    metrics: HeadMetrics | None = None
    fully_masked_queries: list[int] = Field(
        description="Queries that could attend to no key: their weights and outputs are zeros"
    )
    layers: list[int] | None = Field(
        None, description="Pretrained models: the layers of the leading axis of attention and steps"
    )
    analysis: dict[str, Any] | None = Field(
        None, description="Pretrained models: rollout (L×L), special_share ({token: Nl×H}), "
        "words, word_attention (Nl×H×W×W)",
    )  # fmt: skip
    embedding: Numbers | None = Field(None, description="Pretrained models: the sentence embedding")
    generation: dict[str, Any] | None = Field(
        None, description="Decoder models with `generate`: tokens, token_ids, text, logprobs, "
        "attention (per new token: Nl × H × S_i), top_k and pool (per new token, with "
        "output.top_k or pool: its row shaped as one query, pool over blocks of keys), "
        "stop_reason",
    )  # fmt: skip
    queries: list[int] | None = Field(
        None, description="With output.queries: the query positions of the attention rows"
    )
    top_k: dict[str, Numbers] | None = Field(
        None, description="With output.top_k: keys and weights (H × Lq × k), mass (H × Lq); "
        "pretrained models: a leading layer axis; attention 'average': no head axis",
    )  # fmt: skip
    pool: dict[str, Numbers] | None = Field(
        None, description="With output.pool: max and mean (H × Nq × Nk), query_bounds (Nq + 1) "
        "and key_bounds (Nk + 1): block i covers [bounds[i], bounds[i+1]); key_bounds and, for "
        "a range of queries, query_bounds in token positions; for a list of queries, "
        "query_bounds index that list (results[i].queries)",
    )  # fmt: skip
    truncated: dict[str, int] | None = Field(
        None, description="With truncate, for a sequence that was cut: tokens (its length "
        "before the cut, special tokens included) and kept (after it)",
    )  # fmt: skip


class StepInfo(BaseModel):
    name: str = Field(description="The name in output.steps and results[i].steps")
    layout: str = Field(description="tokens, head_queries, head_keys or head_matrix")
    shape: str = Field(description="One sequence's shape (pretrained: a leading layer axis)")
    meaning: str


class ResolvedConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    d_model: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    scale: float


class Meta(BaseModel):
    device: str
    dtype: str
    elapsed_ms: float = Field(description="Server time: validation, queue, compute and encoding")
    compute_ms: float = Field(description="Time spent in the attention module")
    queue_ms: float = Field(description="Time spent waiting for a computation slot")
    version: str
    torch_version: str


class AttentionResponse(BaseModel):
    results: list[SequenceResult]
    config: ResolvedConfig
    meta: Meta
    parameters: dict[str, Numbers] | None = Field(
        None, description="With output.parameters (the random model): the layer's state dict, "
        "keys and layouts of torch.nn.MultiheadAttention (weights out × in: q = x · W_Qᵀ + b_Q); "
        "with grouped K/V heads, K and V have num_kv_heads heads' rows",
    )  # fmt: skip


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    detail: list[ErrorItem]


class MessageErrorBody(BaseModel):
    detail: str
