"""A decoder request, estimated before it runs (the memory model: docs/reliability.md): the
prompt's pass through every layer and what it keeps, the logits, and with `generate` the KV
cache, each new token's attention rows and their answer; the answer as shaped (output.heads,
queries, top_k, pool, dtype)."""

from __future__ import annotations

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


def decoder_estimate(
    request: AttentionRequest,
    batch: TokenizedBatch,
    config: DecoderConfig,
    layers: list[int],
    media_type: str,
) -> Estimate:
    new = 0 if request.generate is None else request.generate.max_new_tokens
    length = max(batch.lengths)
    context = length + new
    dims = Dims(
        batch=len(batch.lengths),
        queries=length,
        keys=length,
        d_model=max(config.hidden_size, config.num_heads * config.head_dim),
        heads=config.num_heads,
        kv_width=config.num_kv_heads * config.head_dim,
    )
    options = request.output
    steps = tuple(step for step in options.step_names() if step in TRACED_STEPS)
    kept = len(weighted_layers(request, layers))
    matrix, rows = step_elements("attention", dims), step_elements("inputs", dims)
    attention = forward_elements(
        config.attention_config(0), dims, traced=bool(steps), weights=kept > 0
    )
    feed_forward = 3 * dims.batch * length * config.intermediate_size + rows
    logits = 2 * dims.batch * length * config.vocab_size  # the logits and their softmax
    traces = len(layers) * sum(step_elements(step, dims) for step in steps)
    cache = 2 * config.num_layers * dims.batch * context * dims.kv_width
    kept_rows = new * kept * config.num_heads * context  # each new token's rows, kept dense
    held = (config.num_layers + 1) * rows + kept * matrix + traces + cache + kept_rows
    output = step_elements("output", dims)
    shaped = returned_elements(dims, steps, options.attention, batch_shaping(options, length))
    returned = len(layers) * (shaped - output) + output
    returned += generated_elements(options, config.num_heads, len(layers), new, context)
    returned += 2 * new  # the log-probabilities and ids
    labels = 2 * sum(len(token) + 4 for tokens in batch.tokens for token in tokens)
    labels += new * 64  # a generated token's text, its id and its place in `text`
    # per sequence: output, attention, the steps and three metrics, each an array with its
    # framing (a MessagePack array's dtype and shape), the shaped fields' own; per new token
    # its attention, or its shaped fields
    extra = SHAPED_ARRAYS if options.shapes_attention() else 0
    arrays = dims.batch * (5 + len(steps) + extra) + new * (1 + extra)
    metrics = 3 * len(layers) * dims.batch * config.num_heads * length if options.metrics else 0
    number = number_bytes(media_type, "float32", options.precision, options.dtype)
    answer = (
        (returned + metrics) * number
        + 8 * metrics  # top_key: 8-byte integers
        + labels
        + arrays * ARRAY_FRAMING_BYTES
    )
    # the cut: the dense weights of the layers are copied for the answer, or for the metrics
    # beside a shaped answer (shaped, each layer is shaped where it lies: no copy)
    copied = len(layers) * matrix if options.metrics and options.shapes_attention() else 0
    forward = held + max(attention, feed_forward, logits, returned + copied)
    item = ITEM_BYTES["float32"]
    return peak_estimate(item, dims, built=0, forward=forward, held=returned, answer=answer)
