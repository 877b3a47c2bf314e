"""A decoder request, estimated before it runs (the memory model: docs/reliability.md): the
prompt's pass through every layer and what it keeps, the logits, and with `generate` the KV
cache, each new token's attention rows and their answer; the answer as shaped (output.heads,
queries, top_k, pool, dtype)."""

from __future__ import annotations

from dataclasses import dataclass

from app.http.schemas import AttentionRequest, OutputOptions
from app.pipelines.cost import ITEM_BYTES, Estimate, number_bytes, peak_estimate
from app.pipelines.encoder.checks import TRACED_STEPS
from app.pipelines.shaping import batch_shaping, row_shaping
from attention import Dims, step_elements
from attention.bert import TokenizedBatch
from attention.cost import forward_elements, returned_elements
from attention.decoder import DecoderConfig

ARRAY_FRAMING_BYTES = 96  # an array's keys, dtype and shape around its numbers
SHAPED_ARRAYS = 4  # top_k's keys, weights and mass in place of one array, pool's max and mean


def weighted_layers(request: AttentionRequest, layers: list[int]) -> list[int]:
    """The layers whose weights the answer uses (the others run on the fused kernel)."""
    options = request.output
    return sorted(layers) if options.attention != "none" or options.metrics else []


def generated_elements(
    options: OutputOptions, heads: int, layers: int, new: int, context: int
) -> int:
    """Numbers of the new tokens' attention in the answer: per token and layer one query row
    over at most `context` keys, shaped as asked (`row_shaping`)."""
    if options.attention == "none" or new == 0:
        return 0
    row = Dims(batch=1, queries=1, keys=context, d_model=1, heads=heads, kv_width=1)
    shaped = returned_elements(row, (), options.attention, row_shaping(options))
    return new * layers * (shaped - step_elements("output", row))


@dataclass(frozen=True)
class DecoderPass:
    """What every part of the estimate reads: the prompts' shape, the new tokens, what the
    answer traces and weighs."""

    dims: Dims  # the prompts' pass: batch, longest prompt, the widest projection
    new: int  # tokens generated (0 without `generate`)
    steps: tuple[str, ...]  # the traced steps asked for
    layers: int  # layers answered
    weighted: int  # of them, those whose weights the answer uses

    @property
    def length(self) -> int:
        return self.dims.queries

    @property
    def context(self) -> int:
        """Keys of the last new token: the prompt and every token generated."""
        return self.length + self.new


def decoder_pass(
    request: AttentionRequest, batch: TokenizedBatch, config: DecoderConfig, layers: list[int]
) -> DecoderPass:
    length = max(batch.lengths)
    dims = Dims(
        batch=len(batch.lengths),
        queries=length,
        keys=length,
        d_model=max(config.hidden_size, config.num_heads * config.head_dim),
        heads=config.num_heads,
        kv_width=config.num_kv_heads * config.head_dim,
    )
    return DecoderPass(
        dims,
        new=0 if request.generate is None else request.generate.max_new_tokens,
        steps=tuple(step for step in request.output.step_names() if step in TRACED_STEPS),
        layers=len(layers),
        weighted=len(weighted_layers(request, layers)),
    )


def decoder_estimate(
    request: AttentionRequest,
    batch: TokenizedBatch,
    config: DecoderConfig,
    layers: list[int],
    media_type: str,
) -> Estimate:
    run = decoder_pass(request, batch, config, layers)
    options = request.output
    returned = answer_elements(run, config, options)
    # the cut: the dense weights of the layers are copied for the answer, or for the metrics
    # beside a shaped answer (shaped, each layer is shaped where it lies: no copy)
    copied = 0
    if options.metrics and options.shapes_attention():
        copied = run.layers * step_elements("attention", run.dims)
    forward = held_elements(run, config) + max(transient_elements(run, config), returned + copied)
    answer = answer_bytes(run, config, options, batch, returned, media_type)
    item = ITEM_BYTES["float32"]
    return peak_estimate(item, run.dims, built=0, forward=forward, held=returned, answer=answer)


def held_elements(run: DecoderPass, config: DecoderConfig) -> int:
    """Numbers kept through the pass: every layer's input rows, the weights and traces the
    answer uses, the KV cache, and each new token's attention rows (kept dense)."""
    dims = run.dims
    rows, matrix = step_elements("inputs", dims), step_elements("attention", dims)
    traces = run.layers * sum(step_elements(step, dims) for step in run.steps)
    cache = 2 * config.num_layers * dims.batch * run.context * dims.kv_width
    kept_rows = run.new * run.weighted * config.num_heads * run.context
    return (config.num_layers + 1) * rows + run.weighted * matrix + traces + cache + kept_rows


def transient_elements(run: DecoderPass, config: DecoderConfig) -> int:
    """The largest of what one layer or the head allocates and frees: attention, the
    feed-forward, the logits and their softmax."""
    dims = run.dims
    attention = forward_elements(
        config.attention_config(0), dims, traced=bool(run.steps), weights=run.weighted > 0
    )
    feed_forward = 3 * dims.batch * run.length * config.intermediate_size
    feed_forward += step_elements("inputs", dims)
    logits = 2 * dims.batch * run.length * config.vocab_size
    return max(attention, feed_forward, logits)


def answer_elements(run: DecoderPass, config: DecoderConfig, options: OutputOptions) -> int:
    """Numbers of the answer: per layer the prompts' attention and steps as shaped, the output
    once, the new tokens' attention, and their log-probabilities and ids."""
    dims = run.dims
    output = step_elements("output", dims)
    shaping = batch_shaping(options, run.length)
    shaped = returned_elements(dims, run.steps, options.attention, shaping)
    returned = run.layers * (shaped - output) + output
    returned += generated_elements(options, config.num_heads, run.layers, run.new, run.context)
    return returned + 2 * run.new


def answer_bytes(
    run: DecoderPass,
    config: DecoderConfig,
    options: OutputOptions,
    batch: TokenizedBatch,
    returned: int,
    media_type: str,
) -> int:
    """The answer encoded: its numbers, the metrics, the token labels, each array's framing."""
    dims = run.dims
    labels = 2 * sum(len(token) + 4 for tokens in batch.tokens for token in tokens)
    labels += run.new * 64  # a generated token's text, its id and its place in `text`
    # per sequence: output, attention, the steps and three metrics, each an array with its
    # framing (a MessagePack array's dtype and shape), the shaped fields' own; per new token
    # its attention, or its shaped fields
    extra = SHAPED_ARRAYS if options.shapes_attention() else 0
    arrays = dims.batch * (5 + len(run.steps) + extra) + run.new * (1 + extra)
    metrics = 3 * run.layers * dims.batch * config.num_heads * run.length if options.metrics else 0
    number = number_bytes(media_type, "float32", options.precision, options.dtype)
    return (
        (returned + metrics) * number
        + 8 * metrics  # top_key: 8-byte integers
        + labels
        + arrays * ARRAY_FRAMING_BYTES
    )
