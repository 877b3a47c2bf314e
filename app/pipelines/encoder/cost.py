"""A pretrained model's request, estimated before it runs: every layer's pass and what it keeps,
then the answer, cut and encoded (the memory model: docs/reliability.md)."""

from __future__ import annotations

from app.http.schemas import AttentionRequest
from app.pipelines.cost import ITEM_BYTES, Estimate, number_bytes, peak_estimate
from app.pipelines.encoder.checks import TRACED_STEPS
from app.pipelines.shaping import batch_shaping
from attention import Dims, step_elements
from attention.bert import BertConfig, TokenizedBatch
from attention.cost import forward_elements, returned_elements

TRUNCATION_NOTE_BYTES = 64
"""results[i].truncated: `{"tokens": n, "kept": n}` and its key, two integers of 10 digits."""


def weighted_layers(request: AttentionRequest, layers: list[int], num_layers: int) -> list[int]:
    """The layers whose attention weights the answer uses: every one for the rollout, the
    requested ones for weights or metrics, none otherwise (they run on the fused kernel)."""
    options = request.output
    if options.analysis:
        return list(range(num_layers))
    if options.attention != "none" or options.metrics:
        return sorted(layers)
    return []


def pretrained_estimate(
    request: AttentionRequest,
    batch: TokenizedBatch,
    config: BertConfig,
    layers: list[int],
    media_type: str,
) -> Estimate:
    """Every layer's pass and what it keeps: the hidden states, the weights of the layers that
    are used, the traces of the traced ones; then the answer, cut and encoded."""
    dims = Dims(
        batch=len(batch.lengths),
        queries=max(batch.lengths),
        keys=max(batch.lengths),
        d_model=config.hidden_size,
        heads=config.num_attention_heads,
        kv_width=config.hidden_size,
    )
    options = request.output
    steps = tuple(step for step in options.step_names() if step in TRACED_STEPS)
    kept = len(weighted_layers(request, layers, config.num_hidden_layers))
    matrix, rows = step_elements("attention", dims), step_elements("inputs", dims)
    attention = forward_elements(
        config.attention_config(), dims, traced=bool(steps), weights=kept > 0
    )
    feed_forward = 2 * dims.batch * dims.queries * config.intermediate_size + rows
    traces = len(layers) * sum(step_elements(step, dims) for step in steps)
    # every layer's hidden state, the kept weights and traces: alive until the answer is cut
    held = (config.num_hidden_layers + 1) * rows + kept * matrix + traces
    output = step_elements("output", dims)
    shaped = returned_elements(dims, steps, options.attention, batch_shaping(options, dims.queries))
    returned = len(layers) * (shaped - output) + output
    if options.analysis:
        returned += dims.batch * dims.queries**2 + len(layers) * matrix  # rollout, words
    dtype = request.config.dtype
    labels = 2 * sum(len(token) + 4 for tokens in batch.tokens for token in tokens)
    labels += TRUNCATION_NOTE_BYTES * dims.batch if request.truncate else 0
    answer = returned * number_bytes(media_type, dtype, options.precision, options.dtype) + labels
    # the cut stacks one sequence's kept layers and copies the chosen ones out of that stack
    # (run.py, _chosen_layers), whatever the answer keeps of them (shaped or dense)
    sequence_copies = 2 * kept * dims.heads * dims.queries * dims.keys
    # the pass, then the cut (its copies beside what they are cut from), then the encoding
    forward = held + max(attention, feed_forward, returned + sequence_copies)
    item = ITEM_BYTES[dtype]
    return peak_estimate(item, dims, built=0, forward=forward, held=returned, answer=answer)
