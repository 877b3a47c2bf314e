"""The pretrained encoders' joinable form: requests whose forward passes `attention.bert.joint`
runs as one, each with numbers bitwise equal to its own pass (app/serving/batching.py gathers
them).

Joined: a request to one served model object (the bundled model, ATTENTION_MODEL_PATH's, or an
encoder folder of ATTENTION_MODELS_DIR) on the CPU, in the copy of its dtype already loaded (a
first bfloat16 request loads that copy alone), that traces no steps (a traced
layer keeps every step: a large answer, where joining gains nothing) and whose rows (B·L: its
sequences × their padded length) the model's measured rule admits (`attention.bert.join_rule`).
Streamed requests never join (their frames leave layer by layer, `Prepared.frames`). Members
may differ in everything after the forward: layers, shaping, analysis, embedding, precision,
media type; each is cut and encoded as its own work does (`run_pretrained` on its part of the
pass). A member the rule turns away when the pass measures it first runs alone, in the pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import partial

import torch

from app.http.encoding import Body
from app.http.schemas import AttentionRequest
from app.pipelines.encoder.registry import Pretrained
from app.pipelines.encoder.run import traced_steps
from app.serving.batching import Outcome
from attention import Interrupted
from attention.bert import BertOutput, EncoderCall, join_rule, joint_forward, may_join

Finish = Callable[[BertOutput, float], Body]  # one request's forward output -> its answer


@dataclass(frozen=True)
class EncoderJoin:
    key: Hashable
    pretrained: Pretrained
    call: EncoderCall
    finish: Finish  # cut and encode, as the request's own work does
    alone: Callable[[], Body]  # the request's own work, for a member the rule turns away

    def run_together(
        self, members: Sequence[EncoderJoin], wanted: Callable[[int], bool]
    ) -> list[Outcome]:
        return run_together(members, wanted)


def encoder_join(
    request: AttentionRequest,
    model: str,
    pretrained: Pretrained,
    dtype: torch.dtype,
    rows: int,
    call_of: Callable[[], EncoderCall],
    finish: Finish,
    alone: Callable[[], Body],
) -> EncoderJoin | None:
    """The request's joinable form, or None when it must run alone; `pretrained`: the model in
    the request's dtype, `rows`: its B·L, and `call_of` its forward's arguments (built only for
    a request that may join)."""
    if traced_steps(request):
        return None
    if not may_join(pretrained.model, rows):  # also: on the CPU, a dtype whose rule admits it
        return None
    # the served object itself: a folder reloaded after an eviction is another object
    key = ("encoder", model, id(pretrained), dtype)
    return EncoderJoin(key, pretrained, call_of(), finish, alone)


def run_together(members: Sequence[EncoderJoin], wanted: Callable[[int], bool]) -> list[Outcome]:
    """Each member's answer, in order: the members the model's rule admits from joined passes,
    the others alone; an error of one member's answer reaches it alone."""
    model = members[0].pretrained.model
    rule = join_rule(model)
    passes = [] if rule is None else rule.passes([member.call.rows for member in members])
    outcomes: list[Outcome] = [None] * len(members)
    joined = {index for indices in passes for index in indices}
    for index, member in enumerate(members):
        if index not in joined and wanted(index):
            outcomes[index] = _answer(member.alone)
    for indices in passes:
        computing = time.perf_counter()
        outputs = joint_forward(model, [members[index].call for index in indices])
        for index, output in zip(indices, outputs, strict=True):
            if wanted(index):
                outcomes[index] = _answer(partial(members[index].finish, output, computing))
    return outcomes


def _answer(make: Callable[[], Body]) -> Outcome:
    try:
        return make()
    except Interrupted:
        raise
    except Exception as error:
        return error
