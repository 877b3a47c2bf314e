"""Pretrained encoders (BERT-format folders: ATTENTION_MODEL_PATH or the bundled model, and the
encoder folders of ATTENTION_MODELS_DIR): every layer on the project's MultiHeadAttention.

Checks run on the event loop, tokenizing in a thread off it; the estimate covers every layer's
pass and what it keeps; the work runs the layers, cuts each sequence and encodes the answer.
A float32 request on the CPU may share its forward with concurrent ones (batching.py).
Arrays of a result gain a leading layer axis over the requested `layers`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from app.http.encoding import Body
from app.http.schemas import AttentionRequest
from app.pipelines import RANDOM_MODEL, Context, Prepared
from app.pipelines.answer import encode_answer
from app.pipelines.encoder.batching import encoder_join
from app.pipelines.encoder.checks import (
    check_pretrained_limits,
    check_pretrained_request,
    resolve_layers,
    tokenized,
)
from app.pipelines.encoder.cost import pretrained_estimate
from app.pipelines.encoder.registry import Pretrained, PretrainedRegistry
from app.pipelines.encoder.run import (
    encoder_call,
    forward_pretrained,
    run_pretrained,
    stream_pretrained,
)
from app.pipelines.frames import Emit, end_frame, head_frame, layer_frame
from app.pipelines.shaping import checked_shapings
from attention import InputError, resolve_dtype
from attention.bert import BertConfig, BertOutput, TokenizedBatch


async def prepare(request: AttentionRequest, context: Context) -> Prepared:
    library = context.service.models
    from_library = request.model in library  # an encoder, or a folder of no known family
    if not from_library:
        require_served(request.model, context.service.pretrained, library.names)
    check_pretrained_request(request, request.model)
    dtype = resolve_dtype(request.config.dtype)
    pretrained, copy_in = await served_model(request, context, from_library)
    config = pretrained.info.config
    layers = resolve_layers(request, config.num_hidden_layers)
    batch = await tokenized(request, pretrained.tokenizer, may_truncate=True)
    estimate = pretrained_estimate(request, batch, config, layers, context.media_type)
    check_pretrained_limits(request, batch, estimate, context.service.settings)
    checked_shapings(request.output, config.num_attention_heads, batch.lengths)
    work = EncoderWork(request, context, copy_in, dtype, batch, layers)
    # a copy in another dtype joins once loaded: loading it is the first request's own work
    copy = pretrained if dtype == torch.float32 else context.service.pretrained.loaded(dtype)
    join = None
    if copy is not None:
        join = encoder_join(
            request, request.model, copy, dtype, batch.input_ids.numel(),
            lambda: encoder_call(request, copy, batch, layers), work.finish, work.answer,
        )  # fmt: skip
    return Prepared(work.answer, estimate, frames=work.frames, join=join)


@dataclass(frozen=True)
class EncoderWork:
    """A checked request's work, in the admission's thread: the pass over every layer, the cut
    per sequence, the encoding; whole, in frames, or from its part of a joined pass."""

    request: AttentionRequest
    context: Context
    copy_in: Callable[[torch.dtype], Pretrained]  # the model in a dtype, loaded on first use
    dtype: torch.dtype
    batch: TokenizedBatch
    layers: list[int]

    def answer(self) -> Body:
        model = self.copy_in(self.dtype)
        computing = time.perf_counter()
        output = forward_pretrained(self.request, model, self.batch, self.layers)
        return self.finish(output, computing)

    def finish(self, output: BertOutput, computing: float) -> Body:
        """The answer from the forward's output: the request's own, or its part of a joined
        pass (app/pipelines/encoder/batching.py)."""
        model = self.copy_in(self.dtype)
        results = run_pretrained(self.request, model, self.batch, self.layers, output)
        resolved = resolved_config(self.request, model.info.config, self.layers)
        return encode_answer(self.request, results, resolved, self.context, computing)

    def frames(self, emit: Emit) -> None:
        model = self.copy_in(self.dtype)
        computing = time.perf_counter()
        resolved = resolved_config(self.request, model.info.config, self.layers)
        tokens = [(list(labels), list(labels)) for labels in self.batch.tokens]
        emit(head_frame(self.request.model, resolved, self.layers, tokens, layer_axis=True))

        def on_layer(index: int, results: list[dict[str, Any]]) -> None:
            emit(layer_frame(index, results))

        ends = stream_pretrained(self.request, model, self.batch, self.layers, on_layer)
        emit(end_frame(self.request, ends, self.context, computing))


async def served_model(
    request: AttentionRequest, context: Context, from_library: bool
) -> tuple[Pretrained, Callable[[torch.dtype], Pretrained]]:
    """The float32 model, and how to get its copy in the request's dtype: an encoder folder of
    ATTENTION_MODELS_DIR (loaded on first use, off the event loop, under the library's budget;
    float32 only, as the budget counts it), else the pretrained model of ATTENTION_MODEL_PATH."""
    if not from_library:
        registry = context.service.pretrained
        return registry.get(torch.float32), registry.get
    if request.config.dtype != "float32":
        raise InputError(
            f"config.dtype={request.config.dtype!r}: the models of ATTENTION_MODELS_DIR run in "
            "float32",
            field="config.dtype",
        )
    library = context.service.models
    pretrained = await library.loaded(library.encoder, request.model)
    return pretrained, lambda _: pretrained


def require_served(name: str, registry: PretrainedRegistry, folders: list[str]) -> None:
    if name not in registry.names:
        available = ", ".join([RANDOM_MODEL, *registry.names, *folders])
        why = f" ({registry.unavailable})" if registry.unavailable else ""
        raise InputError(
            f"model={name!r} is not served here{why}; available: {available}", field="model"
        )


def resolved_config(
    request: AttentionRequest, config: BertConfig, layers: list[int]
) -> dict[str, Any]:
    """The model's fixed configuration, as the random model's answer reports its own."""
    return {
        "model": request.model,
        "num_layers": config.num_hidden_layers,
        "d_model": config.hidden_size,
        "num_heads": config.num_attention_heads,
        **config.attention_config().derived(),
        "layers": layers,
        "dtype": request.config.dtype,
    }
