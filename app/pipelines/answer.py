"""The answer every pipeline writes: one result per sequence (the library's unpadded tensors as
numpy arrays beside their token labels), the resolved configuration and the timings, encoded."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from app import __version__
from app.http.encoding import Body, encode
from app.http.schemas import AttentionRequest, OutputOptions
from attention.metrics import HeadMetrics
from attention.results import SequenceResult

if TYPE_CHECKING:
    from app.pipelines import Context

Array = np.ndarray[Any, Any]


def encode_answer(
    request: AttentionRequest,
    results: list[dict[str, Any]],
    config: dict[str, Any],
    context: Context,
    computing: float,
    parameters: dict[str, Array] | None = None,
) -> Body:
    """The whole answer, in the negotiated encoding; `parameters`: the layer's, when asked for."""
    payload = {"results": results, "config": config, "meta": meta(request, context, computing)}
    if parameters is not None:
        payload["parameters"] = parameters
    options = request.output
    return encode(
        payload, context.media_type, options.precision, float16=options.dtype == "float16"
    )


def meta(request: AttentionRequest, context: Context, computing: float) -> dict[str, Any]:
    now = time.perf_counter()
    return {
        "device": str(context.service.device),
        "dtype": request.config.dtype,
        "elapsed_ms": round((now - context.started) * 1e3, 3),
        "compute_ms": round((now - computing) * 1e3, 3),
        "queue_ms": round(context.timing.queued_s * 1e3, 3),
        "version": __version__,
        "torch_version": torch.__version__,
    }


def sequence_answer(
    sequence: SequenceResult, tokens: list[Any], key_tokens: list[Any], options: OutputOptions
) -> dict[str, Any]:
    masked = sequence.fully_masked
    return {
        "tokens": tokens,
        "key_tokens": key_tokens,
        "output": numpy(sequence.output),
        "attention": attention_answer(sequence.weights, options),
        "steps": {name: numpy(tensor) for name, tensor in sequence.steps.items()},
        "metrics": metrics_answer(sequence.metrics),
        "fully_masked_queries": []
        if masked is None
        else masked.any(dim=0).nonzero().flatten().tolist(),
    }


def attention_answer(weights: Tensor | None, options: OutputOptions) -> Array | None:
    """(…, H, L, S) weights as asked: per head, averaged over the heads, or none."""
    if weights is None or options.attention == "none":
        return None
    if options.attention == "average":
        return numpy(weights.mean(dim=-3))
    return numpy(weights)


def metrics_answer(metrics: HeadMetrics | None) -> dict[str, Array] | None:
    if metrics is None:
        return None
    return {name: numpy(value) for name, value in metrics._asdict().items()}


def numpy(tensor: Tensor) -> Array:
    """A tensor's numbers for the answer; numpy has no bfloat16, so those come as float32 (every
    bfloat16 number is exactly a float32 one)."""
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    array: Array = tensor.detach().cpu().numpy()
    return array
