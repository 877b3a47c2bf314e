"""The random model: one seeded layer shaped by the request's config, every step traceable.

Checks and the estimate run on the event loop, before any tensor; the work (build or reuse the
module, run it, cut per sequence, encode) runs in the admission's thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from app.http.encoding import Body
from app.http.schemas import AttentionRequest
from app.pipelines import Context, Prepared
from app.pipelines.answer import Array, encode_answer, numpy
from app.pipelines.cost import Estimate, allocator_slack_bytes, check_estimate
from app.pipelines.frames import Emit, Frame, emit_one_layer
from app.pipelines.random.batching import random_join
from app.pipelines.random.cost import check_limits, check_module, random_estimate
from app.pipelines.random.inputs import (
    check_config_fits,
    explicit_layer,
    library_config,
    run_model,
)
from app.pipelines.random.labels import Labels, request_labels, request_shape
from app.pipelines.random.results import cut_results
from app.pipelines.shaping import batch_shapers, checked_shapings
from attention import (
    AttentionConfig,
    AttentionModel,
    AttentionOutput,
    InputError,
    MultiHeadAttention,
    resolve_dtype,
)
from attention.shaping import Shaping

ADVICE = (
    "ask for output.top_k or output.pool, fewer heads or queries, fewer steps, attention "
    "'average' or 'none', MessagePack, a lower precision, or send fewer or shorter sequences"
)


async def prepare(request: AttentionRequest, context: Context) -> Prepared:
    work, estimate, cached = checked(request, context)
    # the whole estimated peak, not only the answer: a long sequence with a small answer is
    # still a long computation, which must not hold the event loop
    settings = context.service.settings
    inline = cached and estimate.peak_bytes - allocator_slack_bytes() <= settings.inline_max_bytes
    join = random_join(request, work.labels, work.config, work.dtype, context.service.device,
                       work.shapings, work.model, work.finish)  # fmt: skip
    return Prepared(work.answer, estimate, inline, work.frames, join)


def checked(request: AttentionRequest, context: Context) -> tuple[RandomWork, Estimate, bool]:
    """The request's checks and estimate, on the event loop before any tensor; its work, and
    whether its module is built already (the estimate counts building it otherwise)."""
    refuse_encoder_options(request)
    service, settings = context.service, context.service.settings
    config = library_config(request)
    check_config_fits(request)
    labels = request_labels(request)
    shape = request_shape(request, labels, config)
    check_limits(request, shape, settings)
    check_module(config, request.config.dtype, settings)
    dtype = resolve_dtype(request.config.dtype)
    cached = (config, dtype) in service.cache
    estimate = random_estimate(request, shape, config, context.media_type, module_cached=cached)
    check_estimate(estimate, settings, ADVICE)
    shapings = checked_shapings(request.output, config.num_heads, labels.query_lengths)
    return RandomWork(request, context, config, dtype, labels, shapings), estimate, cached


@dataclass(frozen=True)
class RandomWork:
    """A checked request's work, in the admission's thread (or inline): build or reuse the
    module, run it, cut per sequence, encode; whole, in frames, or from a joined pass."""

    request: AttentionRequest
    context: Context
    config: AttentionConfig
    dtype: torch.dtype
    labels: Labels
    shapings: list[Shaping] | None

    def model(self) -> AttentionModel:
        return self.context.service.cache.get(self.config, self.dtype)

    def answer(self) -> Body:
        results, computing, weights = self.compute()
        resolved = resolved_config(self.request, self.config)
        return encode_answer(self.request, results, resolved, self.context, computing, weights)

    def frames(self, emit: Emit) -> None:
        results, computing, weights = self.compute()
        resolved = resolved_config(self.request, self.config)
        emit_one_layer(with_parameters(emit, weights), self.request, results, resolved,
                       self.context, computing)  # fmt: skip

    def finish(self, result: AttentionOutput, computing: float) -> Body:
        """Its answer from its own rows of a joined pass (app/pipelines/random/batching.py): a
        joined request is never shaped, and has no weights of its own (batching.has_own_inputs):
        the seeded ones."""
        results = cut_results(result, self.labels, self.config, self.request.output)
        weights = self.parameters_of(self.model().attention)
        resolved = resolved_config(self.request, self.config)
        return encode_answer(self.request, results, resolved, self.context, computing, weights)

    def compute(self) -> tuple[list[dict[str, Any]], float, dict[str, Array] | None]:
        model = self.model()
        computing = time.perf_counter()
        request, labels, config = self.request, self.labels, self.config
        shapers, sink = batch_shapers(self.shapings, request.output, config, labels.query_lengths,
                                      labels.key_lengths)  # fmt: skip
        layer = explicit_layer(request, model)
        result = run_model(request, labels, model, layer, sink)
        results = cut_results(result, labels, config, request.output, shapers)
        return results, computing, self.parameters_of(layer or model.attention)

    def parameters_of(self, layer: MultiHeadAttention) -> dict[str, Array] | None:
        return layer_parameters(layer) if self.request.output.parameters else None


def with_parameters(emit: Emit, weights: dict[str, Array] | None) -> Emit:
    """A stream's end frame carries the layer's weights beside `meta`, where the answer has them."""
    if weights is None:
        return emit

    def emit_with_weights(frame: Frame) -> None:
        emit({**frame, "parameters": weights} if frame["frame"] == "end" else frame)

    return emit_with_weights


def layer_parameters(layer: MultiHeadAttention) -> dict[str, Array]:
    """The layer's own state dict, the request's `parameters` layout (counted in the estimate:
    layer_parameter_count)."""
    return {name: numpy(tensor) for name, tensor in layer.state_dict().items()}


def resolved_config(request: AttentionRequest, config: AttentionConfig) -> dict[str, Any]:
    """The request's config with what the library derived from it."""
    return {**request.config.model_dump(), **config.derived()}


def refuse_encoder_options(request: AttentionRequest) -> None:
    options = request.output
    given = {
        "layers": "layers" in request.model_fields_set,
        "output.embedding": options.embedding,
        "output.analysis": options.analysis,
        "truncate": request.truncate,
    }
    for name, present in given.items():
        if present:
            raise InputError(
                f"{name} is for pretrained models (GET /models); the random model has one layer",
                field=name,
            )
