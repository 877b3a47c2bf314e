"""In-process timings: the handler's own work without HTTP, and the library against PyTorch.

`handle` runs what POST /attention runs for a request, in the same order and with the same
functions (parse, checks, model, cut, encode), only without the server, the socket and the
thread hand-off; the ratio of the end-to-end p50 to it is the price of serving.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from app.http.answers import SequenceResult
from app.http.encoding import JSON, MSGPACK, encode, negotiate
from app.pipelines import Context, Prepared, pipeline_for
from app.pipelines.random.inputs import library_config, run_model
from app.pipelines.random.labels import request_labels
from app.pipelines.random.results import cut_results
from app.routes.attention import parse_request
from app.service import Service
from app.serving.runtime import Timing
from attention import AttentionConfig, MultiHeadAttention, resolve_dtype
from benchmarks.cases import Case


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def handle(body: bytes, accept: str, service: Service) -> bytes:
    """The handler's work for one request, as post_attention does it, minus HTTP."""
    started = time.perf_counter()
    request = parse_request(body)
    context = Context(service, started, Timing(), negotiate(accept))
    prepared = finished(pipeline_for(request)(request, context))
    with torch.inference_mode():  # as Admission runs it in its worker thread
        return prepared.work()


def finished(coroutine: Coroutine[Any, Any, Prepared]) -> Prepared:
    """The random pipeline's prepare never waits: run it without an event loop's cost."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        prepared: Prepared = done.value
        return prepared
    coroutine.close()
    raise RuntimeError("the pipeline waited for something: run it on an event loop")


def repeat(
    run: Callable[[], object],
    device: torch.device,
    budget_s: float,
    least: int,
    most: int,
    *,
    warm: bool = True,
) -> list[float]:
    """Seconds per call: at least `least` calls, then more until `budget_s` or `most`."""
    if warm:
        run()  # the module cache, the token cache, the allocator
    times: list[float] = []
    spent = 0.0
    while len(times) < least or (spent < budget_s and len(times) < most):
        synchronize(device)
        began = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - began)
        spent += times[-1]
    return times


@dataclass
class InProcess:
    case: str
    median_ms: float
    min_ms: float
    reps: int
    response_bytes: int


def time_case(case: Case, service: Service, budget_s: float, least: int) -> InProcess:
    body = case.body()
    content = handle(body, case.accept, service)
    times = repeat(lambda: handle(body, case.accept, service), service.device, budget_s, least, 500)
    return InProcess(
        case.name,
        statistics.median(times) * 1e3,
        min(times) * 1e3,
        len(times),
        len(content),
    )


# -- the library's hand-written path against torch.nn.MultiheadAttention ---------------------


@dataclass
class LibraryRatio:
    case: str
    path: str  # "need_weights" (weights only) or "trace" (every step)
    ours_ms: float
    torch_ms: float
    ratio: float  # median over alternating pairs of ours / torch


def library_ratios(
    case: Case, device: torch.device, budget_s: float, least: int
) -> list[LibraryRatio]:
    """Our MultiHeadAttention (weights, then the full trace) against PyTorch's, same weights.

    Calls alternate, ours then PyTorch's, and the ratio is the median of the per-pair ratios,
    so that load from other processes falls on both alike.
    """
    config = AttentionConfig(d_model=case.d_model, num_heads=case.heads)
    ours = MultiHeadAttention(config).to(device).eval()
    reference = torch.nn.MultiheadAttention(case.d_model, case.heads, batch_first=True)
    reference.load_state_dict(ours.state_dict(), strict=False)
    reference = reference.to(device).eval()
    x = torch.randn(case.batch, case.tokens, case.d_model, device=device)

    def torch_call() -> object:
        return reference(x, x, x, need_weights=True, average_attn_weights=False)

    calls: dict[str, Callable[[], object]] = {
        "need_weights": lambda: ours(x, need_weights=True),
        "trace": lambda: ours(x, trace=True),
    }
    ratios = []
    with torch.inference_mode():
        for path, call in calls.items():
            pairs = _paired(call, torch_call, device, budget_s, least)
            ratios.append(
                LibraryRatio(
                    case.name,
                    path,
                    statistics.median(a for a, _ in pairs) * 1e3,
                    statistics.median(b for _, b in pairs) * 1e3,
                    statistics.median(a / b for a, b in pairs),
                )
            )
    return ratios


def _paired(
    first: Callable[[], object],
    second: Callable[[], object],
    device: torch.device,
    budget_s: float,
    least: int,
) -> list[tuple[float, float]]:
    for _ in range(3):
        first()
        second()
    pairs: list[tuple[float, float]] = []
    spent = 0.0
    while len(pairs) < least or (spent < budget_s and len(pairs) < 5000):
        times = []
        for call in (first, second):
            synchronize(device)
            began = time.perf_counter()
            call()
            synchronize(device)
            times.append(time.perf_counter() - began)
        pairs.append((times[0], times[1]))
        spent += sum(times)
    return pairs


# -- encoders: the service's against FastAPI's own ---------------------------------------------


@dataclass
class EncoderTiming:
    encoder: str
    ms: float
    response_bytes: int


def encoder_timings(case: Case, service: Service, budget_s: float) -> list[EncoderTiming]:
    """One response's results through each encoder: ours (orjson from numpy, MessagePack) and
    FastAPI's paths (a response model validating .tolist() lists; its default jsonable_encoder
    and json.dumps), which need Python lists of every number."""
    from fastapi.encoders import jsonable_encoder
    from pydantic import TypeAdapter

    request = parse_request(case.body())
    config, labels = library_config(request), request_labels(request)
    with torch.inference_mode():
        model = service.cache.get(config, resolve_dtype(request.config.dtype))
        result = run_model(request, labels, model, None)
        results = cut_results(result, labels, config, request.output)
    payload = {"results": results}
    adapter = TypeAdapter(list[SequenceResult])

    def response_model() -> bytes:
        return adapter.dump_json(adapter.validate_python(_lists(results)))

    def fastapi_default() -> bytes:
        return json.dumps(jsonable_encoder(_lists(results))).encode()

    encoders: dict[str, Callable[[], bytes]] = {
        "orjson from numpy (the service)": lambda: encode(payload, JSON),
        "MessagePack, raw bytes (the service)": lambda: encode(payload, MSGPACK),
        "pydantic response model (.tolist())": response_model,
        "FastAPI default (.tolist() + jsonable_encoder + json)": fastapi_default,
    }
    timings = []
    for name, encoder in encoders.items():
        size = len(encoder())  # and warm
        times = repeat(encoder, torch.device("cpu"), budget_s, 1, 50, warm=False)
        timings.append(EncoderTiming(name, statistics.median(times) * 1e3, size))
    return timings


def _lists(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_lists(item) for item in value]
    return value
