"""A streamed answer's frames: the non-streamed answer cut along its layers.

    head   {"frame": "head", "model", "config", "layers", "layer_axis",
            "results": [{"tokens", "key_tokens"}, ...]}             before any layer is computed
    layer  {"frame": "layer", "layer": i, "results": [{LAYER_FIELDS}, ...]}    one per layer,
            as soon as it is computed, in the order the model computes them
    end    {"frame": "end", "results": [{every other field}, ...], "meta"} (and "parameters",
            the random model's weights, with output.parameters)

A layer frame's arrays are that layer's slice of the answer's (no layer axis): stacked in the
order of the head's `layers` (when `layer_axis`; the random model has one layer and no axis) and
merged with the head's and the end's fields, they are the non-streamed answer, number for number
(docs/architecture.md, streaming). An error after the head is the frame
{"frame": "error", "error": {"status", "detail"}} (app/serving/streaming.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.http.schemas import AttentionRequest
from app.pipelines.answer import meta

if TYPE_CHECKING:
    from app.pipelines import Context

Frame = dict[str, Any]
Emit = Callable[[Frame], None]  # hands a frame on (encoded, then written; it may block)

HEAD_FIELDS = ("tokens", "key_tokens")
LAYER_FIELDS = ("attention", "queries", "steps", "metrics", "top_k", "pool")


def head_frame(
    model: str,
    config: dict[str, Any],
    layers: list[int],
    tokens: list[tuple[list[Any], list[Any]]],
    *,
    layer_axis: bool,
) -> Frame:
    """`tokens`: each sequence's query and key labels."""
    results = [{"tokens": queries, "key_tokens": keys} for queries, keys in tokens]
    return {"frame": "head", "model": model, "config": config, "layers": layers,
            "layer_axis": layer_axis, "results": results}  # fmt: skip


def layer_frame(index: int, results: list[dict[str, Any]]) -> Frame:
    return {"frame": "layer", "layer": index, "results": results}


def end_frame(
    request: AttentionRequest, results: list[dict[str, Any]], context: Context, computing: float
) -> Frame:
    return {"frame": "end", "results": results, "meta": meta(request, context, computing)}


def error_frame(status: int, detail: str) -> Frame:
    return {"frame": "error", "error": {"status": status, "detail": detail}}


def pick(result: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: value for name, value in result.items() if name in fields}


def end_fields(result: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in result.items()
            if name not in HEAD_FIELDS and name not in LAYER_FIELDS}  # fmt: skip


def emit_one_layer(
    emit: Emit,
    request: AttentionRequest,
    results: list[dict[str, Any]],
    config: dict[str, Any],
    context: Context,
    computing: float,
) -> None:
    """A model of one layer, its whole answer computed: the same three frames as a deep one's,
    so that a client has one way to read a stream."""
    tokens = [(result["tokens"], result["key_tokens"]) for result in results]
    emit(head_frame(request.model, config, [0], tokens, layer_axis=False))
    emit(layer_frame(0, [pick(result, LAYER_FIELDS) for result in results]))
    emit(end_frame(request, [end_fields(result) for result in results], context, computing))
