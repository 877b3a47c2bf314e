"""One pipeline per model family; the route picks one by the request's model.

    POST /attention ─▶ parse ─▶ pipeline_for(request)
        ─▶ prepare: the family's checks and its cost estimate, before any tensor (event loop)
        ─▶ admission: a slot and the estimate's bytes in the memory budget
        ─▶ work: run, cut per sequence, encode (a worker thread; the event loop itself for
           the smallest, `Prepared.inline`)

Every pipeline has the same small interface, `prepare(request, context) -> Prepared`; adding a
model family is adding a package here with one (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from app.http.schemas import AttentionRequest
from app.pipelines.cost import Estimate
from app.serving.runtime import Timing

if TYPE_CHECKING:
    from app.service import Service

RANDOM_MODEL = "random"  # the seeded model shaped by the request's config; every other is a folder


@dataclass(frozen=True)
class Context:
    """What a pipeline needs of the request beyond its body."""

    service: Service
    started: float  # perf_counter at arrival
    timing: Timing
    media_type: str  # of the answer


@dataclass(frozen=True)
class Prepared:
    """A request that passed its checks: its estimate, and the work that answers it."""

    work: Callable[[], bytes]
    estimate: Estimate
    inline: bool = False  # small enough to compute on the event loop (Admission.run)


class Pipeline(Protocol):
    def __call__(self, request: AttentionRequest, context: Context) -> Awaitable[Prepared]: ...


def pipeline_for(request: AttentionRequest) -> Pipeline:
    from app.pipelines import encoder, random  # the packages import this module's types

    return random.prepare if request.model == RANDOM_MODEL else encoder.prepare
