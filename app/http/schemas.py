"""Request models of POST /attention, named by role (the answer models: app/http/answers.py).

The field names of `AttentionRequest`, and `results[i].output`, `.attention` and `.steps` of the
response, are the contract clients and frontends rely on (docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from attention import STEPS

DEFAULT_SENTENCE = "The man who passes the sentence should swing the sword"
DEFAULT_TOKENS = DEFAULT_SENTENCE.split()

if TYPE_CHECKING:
    StepName = str
else:  # the schema's enum is the step registry's names (attention/steps.py), in pipeline order
    StepName = Literal[STEPS]

# Bounds every integer of the schema has, far above any setting's limit: the settings refuse a
# large value with 413 and their names; these only keep absurd numbers (2**64) out of the code
MAX_WIDTH = 65_536
MAX_HEADS = 4_096
MAX_POSITIONS = 1_048_576
MAX_VOCAB = 16_777_216
MAX_LAYERS = 1_024
MAX_NEW_TOKENS = 65_536  # the schema's own bound; ATTENTION_MAX_NEW_TOKENS is the working one
TokenId = Annotated[StrictInt, Field(le=MAX_VOCAB - 1)]


def _token_kind(sequence: Any) -> str:
    """Which list a token sequence is, read from its first element: strings or ids."""
    if isinstance(sequence, list) and sequence and isinstance(sequence[0], str):
        return "strings"
    return "ids"


# A tagged union, not `list[StrictStr] | list[TokenId]`: pydantic validates a plain union from a
# buffered copy of the JSON, once per member, which made 64 × 2,048 ids 2.6× slower to parse
# (26 → 10 ms, on the event loop); errors are located under "ids" or "strings"
TokenSequence = Annotated[
    Annotated[list[TokenId], Tag("ids")] | Annotated[list[StrictStr], Tag("strings")],
    Discriminator(_token_kind),
]
Matrix = list[list[float]]
Tensor3 = list[list[list[float]]]
NestedNumbers = Any  # a PyTorch tensor as nested lists; its shape is checked against the module


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class HeadConfig(Strict):
    """The head configuration; names follow `torch.nn.MultiheadAttention` where it has them."""

    d_model: int = Field(
        64, ge=1, le=MAX_WIDTH, description="Model width E; each head gets d_model / num_heads. "
        "The bound here is an absolute cap: the working limit is ATTENTION_MAX_D_MODEL (GET /info "
        "limits.max_d_model), 413 past it",
    )  # fmt: skip
    num_heads: int = Field(
        4, ge=1, le=MAX_HEADS, description="Query heads H; must divide d_model. The bound here "
        "is an absolute cap: the working limit is ATTENTION_MAX_HEADS (GET /info "
        "limits.max_heads), 413 past it",
    )  # fmt: skip
    num_kv_heads: int | None = Field(
        None, ge=1, le=MAX_HEADS, description="K/V heads for grouped-query attention "
        "(1 = multi-query); must divide num_heads; null = num_heads",
    )  # fmt: skip
    kdim: int | None = Field(
        None, ge=1, le=MAX_WIDTH, description="Width of key_embeddings; null = d_model. "
        "At most ATTENTION_MAX_D_MODEL (GET /info limits.max_d_model; the bound here is an "
        "absolute cap)",
    )  # fmt: skip
    vdim: int | None = Field(
        None, ge=1, le=MAX_WIDTH, description="Width of value_embeddings; null = d_model. "
        "At most ATTENTION_MAX_D_MODEL (GET /info limits.max_d_model; the bound here is an "
        "absolute cap)",
    )  # fmt: skip
    bias: StrictBool = Field(True, description="Biases in the input and output projections")
    add_bias_kv: StrictBool = Field(
        False, description="Append a learned key and value (bias_k, bias_v)"
    )
    add_zero_attn: StrictBool = Field(False, description="Append an all-zero key and value")
    positional_encoding: Literal["none", "sinusoidal", "learned", "rope", "alibi"] = Field(
        "sinusoidal", description="Added to the embeddings (sinusoidal, learned), rotating q and "
        "k (rope) or biasing the scores (alibi)",
    )  # fmt: skip
    causal: StrictBool = Field(
        False, description="Query i attends to keys 0..i only (top-left aligned)"
    )
    window: int | None = Field(
        None, ge=1, le=MAX_POSITIONS, description="Keys at distance < window from the query; "
        "null = all",
    )  # fmt: skip
    scale: float | None = Field(None, gt=0, description="Score scale; null = 1/sqrt(head_dim)")
    dropout: float = Field(
        0.0, ge=0, lt=1, description="Dropout on the weights; the service computes in inference "
        "mode, where dropout is not applied (as in PyTorch's eval())",
    )  # fmt: skip
    max_positions: int = Field(
        2048, ge=1, le=MAX_POSITIONS, description="Rows of the learned position table"
    )
    rope_base: float = Field(10000.0, gt=1, description="RoPE frequency base")
    vocab_size: int = Field(
        1024, ge=1, le=MAX_VOCAB, description="Rows of the table integer token ids index"
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of weights and token embeddings")
    dtype: Literal["float32", "float64", "bfloat16"] = Field(
        "float32",
        description="Computation precision. bfloat16 (the random model and the pretrained "
        "model: the bundled all-MiniLM-L6-v2 or ATTENTION_MODEL_PATH's; not the folders of "
        "ATTENTION_MODELS_DIR) is 2-3x faster on CPUs with bfloat16 instructions and keeps "
        "about 3 significant digits; answers carry its numbers as float32",
    )


AllSteps = Literal["all"]
_STEP_LIST: TypeAdapter[list[StepName]] = TypeAdapter(list[StepName])
_ALL_STEPS: TypeAdapter[AllSteps] = TypeAdapter(AllSteps)


MAX_TOP_K = 1_024
MAX_POOL = 1_024
HeadIndex = Annotated[StrictInt, Field(ge=0, le=MAX_HEADS - 1)]
QueryIndex = Annotated[StrictInt, Field(ge=0, le=MAX_POSITIONS - 1)]
# at least one position, as output.heads takes at least one head: [] would answer empty rows
QueryList = Annotated[list[QueryIndex], Field(min_length=1)]


class QueryRange(Strict):
    """Query positions start..stop - 1 (stop past the sequence's end: up to its last query)."""

    start: int = Field(0, ge=0, le=MAX_POSITIONS - 1, description="The first query position")
    stop: int = Field(ge=1, le=MAX_POSITIONS, description="One past the last query position")

    @model_validator(mode="after")
    def _not_empty(self) -> QueryRange:
        if self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be greater than start ({self.start})")
        return self


_QUERY_LIST: TypeAdapter[list[int]] = TypeAdapter(QueryList)


class OutputOptions(Strict):
    attention: Literal["per_head", "average", "none"] = Field(
        "per_head", description="Attention weights per head (H×L×S), their average (L×S), or none"
    )
    steps: list[StepName] | AllSteps = Field(
        default_factory=list, description="Intermediate steps to return, or 'all'"
    )
    precision: int | None = Field(
        None, ge=0, le=10, description="Round every number to this many decimals; null = full"
    )
    metrics: StrictBool = Field(
        False, description="Per head: entropy, mean attention distance, most-attended key"
    )
    embedding: StrictBool = Field(
        False, description="Pretrained models: the sentence embedding (mean pooling, L2-normalised)"
    )
    analysis: StrictBool = Field(
        False, description="Pretrained models: attention rollout, shares on [CLS]/[SEP], and "
        "word-level attention (to a word: summed over its pieces; from a word: averaged)",
    )  # fmt: skip
    parameters: StrictBool = Field(
        False, description="The random model: the layer's weights in the answer's `parameters`, "
        "as the torch.nn.MultiheadAttention state dict that the request's `parameters` takes "
        "(W_Q, W_K, W_V in in_proj_weight or q/k/v_proj_weight, W_O in out_proj.weight)",
    )  # fmt: skip
    heads: list[HeadIndex] | None = Field(
        None, min_length=1, max_length=MAX_HEADS, description="The heads whose attention "
        "(dense, top_k or pool) to return, in this order; null = all",
    )  # fmt: skip
    queries: QueryRange | QueryList | None = Field(
        None, description="The query positions whose attention rows to return: a range "
        "{start, stop} or a list of positions; null = all",
    )  # fmt: skip
    top_k: int | None = Field(
        None, ge=1, le=MAX_TOP_K, description="Per head and query, the k largest weights "
        "as top_k.keys (key indices) and top_k.weights, largest first, and top_k.mass (their "
        "sum), instead of the dense attention",
    )  # fmt: skip
    pool: int | None = Field(
        None, ge=1, le=MAX_POOL, description="An overview of at most pool × pool cells per "
        "head: max and mean of the weights over blocks of queries and keys, with the blocks' "
        "bounds in token positions, instead of the dense attention",
    )  # fmt: skip
    dtype: Literal["float32", "float16"] = Field(
        "float32", description="MessagePack answers: the type of their float arrays "
        "(float16 halves them; JSON numbers follow `precision`)",
    )  # fmt: skip

    @field_validator("steps", mode="wrap")
    @classmethod
    def _one_error_per_unknown_step(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """A list is checked as a list only and a string as 'all' only: one error per unknown
        name, at its index, instead of the union's pair with type names in their locs."""
        if isinstance(value, list):
            return _STEP_LIST.validate_python(value)
        if isinstance(value, str):
            return _ALL_STEPS.validate_python(value)
        return handler(value)

    @field_validator("queries", mode="wrap")
    @classmethod
    def _one_error_per_query_form(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """A list is checked as a list of positions only and an object as a range only."""
        if isinstance(value, list):
            return _QUERY_LIST.validate_python(value)
        if isinstance(value, dict):
            return QueryRange.model_validate(value)
        return handler(value)

    def step_names(self) -> tuple[str, ...]:
        return STEPS if self.steps == "all" else tuple(dict.fromkeys(self.steps))

    def shapes_attention(self) -> bool:
        """Whether any of heads, queries, top_k or pool is asked for."""
        return any(value is not None for value in (self.heads, self.queries, self.top_k, self.pool))

    @model_validator(mode="after")
    def _shaping_needs_weights(self) -> OutputOptions:
        if self.attention == "none" and self.shapes_attention():
            raise ValueError(
                "heads, queries, top_k and pool shape the attention weights: they need "
                "attention 'per_head' or 'average', not 'none'"
            )
        return self


class GenerateOptions(Strict):
    """Decoder models: continue the text, every new token with its attention (docs/models.md)."""

    max_new_tokens: int = Field(
        16, ge=1, le=MAX_NEW_TOKENS, description="Tokens to generate at most. The bound here is an "
        "absolute cap: the working limits are ATTENTION_MAX_NEW_TOKENS (GET /info "
        "limits.max_new_tokens) and, with the prompt's tokens, ATTENTION_MAX_CONTEXT_TOKENS "
        "(limits.max_context_tokens), 413 past either",
    )  # fmt: skip
    temperature: float = Field(
        0.0, ge=0, le=100, description="0 = greedy (argmax, reproducible); above 0, sampling"
    )
    top_k: int | None = Field(None, ge=1, le=2**31 - 1, description="Sample among the k likeliest")
    top_p: float | None = Field(
        None, gt=0, le=1, description="Sample within the smallest set of likeliest tokens whose "
        "probability reaches top_p (nucleus)",
    )  # fmt: skip
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of the sampling generator")
    stop: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=16, description="Stop once the generated text holds one"
    )


class AttentionRequest(Strict):
    """Exactly one of `sequences`, `text` or `embeddings`; keys optional (cross-attention)."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "text": DEFAULT_SENTENCE,
                    "config": {"d_model": 64, "num_heads": 4, "seed": 0},
                    "output": {"attention": "per_head", "steps": ["q", "k", "attention"]},
                }
            ]
        },
    )

    sequences: list[TokenSequence] | None = Field(
        None, description="Token sequences: strings (hashed) or integer ids; ragged is fine. "
        "At most ATTENTION_MAX_BATCH sequences of ATTENTION_MAX_TOKENS tokens, each string of "
        "ATTENTION_MAX_TOKEN_CHARS characters (GET /info limits.max_batch, max_tokens, "
        "max_token_chars), 413 past them",
        examples=[[DEFAULT_TOKENS]],
    )  # fmt: skip
    text: str | list[str] | None = Field(
        None, description="Text tokenized into words and punctuation (regex \\w+|[^\\w\\s]). "
        "At most ATTENTION_MAX_TEXT_CHARS characters in all, ATTENTION_MAX_BATCH texts, "
        "ATTENTION_MAX_TOKENS tokens each (GET /info limits.max_text_chars, max_batch, "
        "max_tokens), 413 past them",
        examples=[DEFAULT_SENTENCE],
    )  # fmt: skip
    embeddings: list[Matrix] | None = Field(
        None, description="B × L × d_model vectors, used instead of token embeddings; B at most "
        "ATTENTION_MAX_BATCH, L at most ATTENTION_MAX_TOKENS (GET /info limits), 413 past them",
    )  # fmt: skip
    key_sequences: list[TokenSequence] | None = Field(
        None, description="Cross-attention: keys and values from these token sequences (one per "
        "query sequence), embedded like the queries; at most ATTENTION_MAX_TOKENS keys each "
        "(GET /info limits.max_tokens)",
    )  # fmt: skip
    key_embeddings: list[Matrix] | None = Field(
        None, description="Cross-attention: B × S × kdim key vectors, used as given; S at most "
        "ATTENTION_MAX_TOKENS (GET /info limits.max_tokens)",
    )  # fmt: skip
    value_embeddings: list[Matrix] | None = Field(
        None, description="Cross-attention: B × S × vdim value vectors; null = key_embeddings"
    )
    key_padding_mask: list[list[StrictBool]] | None = Field(
        None, description="B × S, true = the key may not be attended to (PyTorch polarity)"
    )
    attn_mask: list[list[StrictBool]] | list[list[StrictFloat]] | None = Field(
        None, description="L × S (longest query and key lengths): booleans (true = blocked) or "
        "floats added to the scaled scores",
    )  # fmt: skip
    parameters: dict[str, NestedNumbers] | None = Field(
        None, description="Weights as a torch.nn.MultiheadAttention state dict (in_proj_weight, "
        "in_proj_bias, q_proj_weight, k_proj_weight, v_proj_weight, bias_k, bias_v, "
        "out_proj.weight, out_proj.bias); null = drawn from config.seed",
    )  # fmt: skip
    config: HeadConfig = Field(default_factory=HeadConfig)
    output: OutputOptions = Field(default_factory=OutputOptions)
    model: str = Field(
        "random", description="'random' (seeded weights, shaped by config) or a pretrained model "
        "from GET /models, e.g. 'all-minilm-l6-v2'; matched whatever its case (names are lower "
        "case: 'MyGPT2' is mygpt2, and the answer names it so)",
    )  # fmt: skip
    layers: list[Annotated[StrictInt, Field(ge=0, le=MAX_LAYERS - 1)]] | Literal["all"] = Field(
        "all", description="Pretrained models: the layers whose attention and steps to return"
    )
    generate: GenerateOptions | None = Field(
        None, description="Decoder models: generate after the text (one text), with each new "
        "token's attention over the context and its log-probability",
    )  # fmt: skip
    truncate: StrictBool = Field(
        False, description="Encoder models: cut a text longer than the model's max_seq_length "
        "to it (results[i].truncated says how much) instead of a 422",
    )  # fmt: skip

    @model_validator(mode="after")
    def _one_query_source(self) -> AttentionRequest:
        given = [
            name for name in ("sequences", "text", "embeddings") if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of sequences, text or embeddings"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.key_sequences is not None and self.key_embeddings is not None:
            raise ValueError("give key_sequences or key_embeddings, not both")
        if self.value_embeddings is not None and self.key_embeddings is None:
            raise ValueError("value_embeddings needs key_embeddings")
        return self

    @model_validator(mode="after")
    def _parameters_of_the_random_model(self) -> AttentionRequest:
        random = type(self).model_fields["model"].default  # the seeded model, the only one
        if self.output.parameters and self.model != random:
            raise ValueError(
                f"output.parameters returns the {random!r} model's one layer; model="
                f"{self.model!r} has many (leave output.parameters out)"
            )
        return self
