"""A decoder request, estimated before it runs (the memory model: docs/reliability.md): the
prompt's pass through every layer and what it keeps, the logits, and with `generate` the KV
cache, each new token's attention rows and their answer."""

from __future__ import annotations

from app.http.schemas import AttentionRequest
from app.pipelines.cost import ITEM_BYTES, Estimate, number_bytes, peak_estimate
from app.pipelines.encoder.checks import TRACED_STEPS
from attention import Dims, step_elements
from attention.bert import TokenizedBatch
from attention.cost import forward_elements, returned_elements
from attention.decoder import DecoderConfig

ARRAY_FRAMING_BYTES = 96  # an array's keys, dtype and shape around its numbers


def weighted_layers(request: AttentionRequest, layers: list[int]) -> list[int]:
    """The layers whose weights the answer uses (the others run on the fused kernel)."""
    options = request.output
    return sorted(layers) if options.attention != "none" or options.metrics else []


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
    generated_rows = new * kept * config.num_heads * context  # each new token's attention rows
    held = (config.num_layers + 1) * rows + kept * matrix + traces + cache + generated_rows
    output = step_elements("output", dims)
    returned = len(layers) * (returned_elements(dims, steps, options.attention) - output) + output
    returned += generated_rows + 2 * new  # the rows, the log-probabilities and ids
    labels = 2 * sum(len(token) + 4 for tokens in batch.tokens for token in tokens)
    labels += new * 64  # a generated token's text, its id and its place in `text`
    # per sequence: output, attention, the steps and three metrics, each an array with its
    # framing (a MessagePack array's dtype and shape), and each new token's own array
    arrays = dims.batch * (5 + len(steps)) + new
    metrics = 3 * len(layers) * dims.batch * config.num_heads * length if options.metrics else 0
    answer = (
        (returned + metrics) * number_bytes(media_type, "float32", options.precision)
        + 8 * metrics  # top_key: 8-byte integers
        + labels
        + arrays * ARRAY_FRAMING_BYTES
    )
    forward = held + max(attention, feed_forward, logits, returned)
    item = ITEM_BYTES["float32"]
    return peak_estimate(item, dims, built=0, forward=forward, held=returned, answer=answer)
