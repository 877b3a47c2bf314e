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

from app.http.encoding import Body
from app.http.schemas import AttentionRequest
from app.pipelines.cost import Estimate
from app.pipelines.frames import Emit
from app.serving.batching import Joinable
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
    media_type: str  # of the answer's numbers: JSON or MessagePack, whole or in frames


@dataclass(frozen=True)
class Prepared:
    """A request that passed its checks: its estimate, and the work that answers it."""

    work: Callable[[], Body]
    estimate: Estimate
    inline: bool = False  # small enough to compute on the event loop (Admission.run)
    # the same answer as frames, handed to `emit` layer by layer (app/pipelines/frames.py);
    # None: this family does not stream
    frames: Callable[[Emit], None] | None = None
    join: Joinable | None = None  # a form that may share a pass with others (serving/batching)


class Pipeline(Protocol):
    def __call__(self, request: AttentionRequest, context: Context) -> Awaitable[Prepared]: ...


def pipeline_for(request: AttentionRequest) -> Pipeline:
    """Every request goes through `choose`: which family serves a name is known only to the
    service (ATTENTION_MODELS_DIR's decoders are found at start-up)."""
    return choose


async def choose(request: AttentionRequest, context: Context) -> Prepared:
    """A decoder of ATTENTION_MODELS_DIR by its name, the random model, else the encoder (an
    encoder folder of ATTENTION_MODELS_DIR or the pretrained model, which names the models
    served when the name is neither)."""
    from app.pipelines import decoder, encoder, random  # they import this module's types
    from attention import InputError

    # every model is served under a lower-case name (a folder's in lower case): "MyGPT2" asks
    # for mygpt2, and the answer reports that name
    request.model = request.model.lower()
    if context.service.models.kind(request.model) == "decoder":
        return await decoder.prepare(request, context)
    if request.generate is not None:
        raise InputError(
            f"generate is for decoder models; model={request.model!r} is not one", field="generate"
        )
    if request.model == RANDOM_MODEL:
        return await random.prepare(request, context)
    return await encoder.prepare(request, context)
