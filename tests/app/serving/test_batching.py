"""Micro-batching: who joins, what each member gets back, and what each member holds.

The real pipeline's answers are compared as MessagePack (raw array bytes): equal answers are
bitwise equal numbers. The mechanics (leaving, deadlines, errors, refusals) use a joinable
whose pass waits on an event, so that a test decides when it ends, without timing anything.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import ormsgpack
import pytest

from app.http.encoding import MSGPACK, Body
from app.http.errors import DeadlineExceeded, NotReady
from app.http.schemas import AttentionRequest
from app.pipelines import Context, Prepared
from app.pipelines.random import prepare
from app.service import Service
from app.serving.batching import Batcher, Outcome
from app.serving.runtime import Admission, MemoryBudget, Timing
from app.serving.settings import Settings
from tests.app.serving.test_runtime import eventually
from tests.support.service import service_of

# -- the real pipeline -----------------------------------------------------------------------

FORMS: dict[str, dict[str, Any]] = {
    "weights": {},
    "every step": {"output": {"steps": "all"}},
    "metrics, average": {"output": {"attention": "average", "metrics": True}},
    "causal rope": {"config": {"causal": True, "positional_encoding": "rope"}},
    "float64, steps only": {"config": {"dtype": "float64"}, "output": {"attention": "none",
                                                                       "steps": ["q", "output"]}},
}  # fmt: skip


def attention_request(index: int, form: dict[str, Any], length: int = 7) -> AttentionRequest:
    config = {"d_model": 32, "num_heads": 4, **form.get("config", {})}
    body = {
        "sequences": [[f"r{index}w{position}" for position in range(length)]],
        "config": config,
        "output": form.get("output", {}),
    }
    return AttentionRequest.model_validate(body)


@pytest.fixture
def service() -> Iterator[Service]:
    yield from service_of(Settings(batch_wait_ms=50))


async def prepared(service: Service, request: AttentionRequest) -> tuple[Prepared, Context]:
    context = Context(service, time.perf_counter(), Timing(), MSGPACK)
    return await prepare(request, context), context


async def answer_together(service: Service, requests: list[AttentionRequest]) -> list[Body]:
    """Their answers, after one has built the module: then every one of them is computed on
    the event loop (inline), joined or alone, in the same thread."""
    (await prepared(service, requests[0]))[0].work()
    ready = [await prepared(service, request) for request in requests]
    assert all(p.inline for p, _ in ready)
    return await asyncio.gather(
        *(
            service.batcher.run(p.work, c.timing, p.estimate.peak_bytes, p.inline, p.join)
            for p, c in ready
        )
    )


async def answer_alone(service: Service, request: AttentionRequest) -> Body:
    ready, context = await prepared(service, request)
    return await service.admission.run(ready.work, context.timing, 0, ready.inline)


def without_meta(body: Body) -> dict[str, Any]:
    answer: dict[str, Any] = ormsgpack.unpackb(body)
    del answer["meta"]
    return answer


def assert_nothing_held(admission: Admission) -> None:
    assert (admission.memory.reserved, admission.running, admission.waiting) == (0, 0, 0)


@pytest.mark.anyio
@pytest.mark.parametrize("form", FORMS)
async def test_joined_answers_are_bitwise_the_answers_alone(service: Service, form: str) -> None:
    requests = [attention_request(index, FORMS[form]) for index in range(5)]
    together = await answer_together(service, requests)
    assert service.batcher.joined == 5  # one pass for all five
    for request, body in zip(requests, together, strict=True):
        alone = await answer_alone(service, request)
        assert without_meta(body) == without_meta(alone)
    assert_nothing_held(service.admission)


@pytest.mark.anyio
async def test_each_member_gets_its_own_answer_in_its_own_order(service: Service) -> None:
    requests = [attention_request(index, {}, length=4) for index in range(8)]
    together = await answer_together(service, requests)
    tokens = [without_meta(body)["results"][0]["tokens"] for body in together]
    assert tokens == [request.sequences[0] for request in requests if request.sequences]


@pytest.mark.anyio
async def test_a_lone_request_or_another_form_runs_alone(service: Service) -> None:
    lone = await answer_together(service, [attention_request(0, {})])
    mixed = [attention_request(1, {}, length=5), attention_request(2, {}, length=6)]
    apart = await answer_together(service, mixed)
    assert service.batcher.joined == 0
    assert without_meta(lone[0]) == without_meta(
        await answer_alone(service, attention_request(0, {}))
    )
    assert len(apart) == 2


@pytest.mark.anyio
async def test_forms_that_are_not_exact_joined_are_never_offered(service: Service) -> None:
    two_sequences = AttentionRequest.model_validate(
        {"sequences": [["a", "b"], ["c", "d"]], "config": {"d_model": 32, "num_heads": 4}}
    )
    fused = attention_request(0, {"output": {"attention": "none"}})
    masked = AttentionRequest.model_validate(
        {"sequences": [["a", "b"]], "key_padding_mask": [[False, True]],
         "config": {"d_model": 32, "num_heads": 4}}
    )  # fmt: skip
    for request in (two_sequences, fused, masked):
        assert (await prepared(service, request))[0].join is None


@pytest.mark.anyio
async def test_wait_zero_is_the_plain_admission_path() -> None:
    service = Service.from_settings(Settings(batch_wait_ms=0))
    try:
        requests = [attention_request(index, {}) for index in range(4)]
        together = await answer_together(service, requests)
        assert service.batcher.joined == 0
        for request, body in zip(requests, together, strict=True):
            assert without_meta(body) == without_meta(await answer_alone(service, request))
    finally:
        service.admission.shutdown()


# -- the mechanics, with a joinable the test controls ----------------------------------------


@dataclass(frozen=True)
class Fake:
    """Answers `name`; its pass waits for `gate` and can fail as a whole or for one member."""

    name: str
    gate: threading.Event = field(default_factory=threading.Event)
    passes: list[list[str]] = field(default_factory=list)
    fails: BaseException | None = None  # the whole pass
    fails_alone: BaseException | None = None  # this member's answer only
    key: Hashable = "form"

    def run_together(self, members: Sequence[Any], wanted: Callable[[int], bool]) -> list[Outcome]:
        self.passes.append([member.name for member in members])
        self.gate.wait(timeout=30)
        if self.fails is not None:
            raise self.fails
        return [
            (member.fails_alone or member.name.encode()) if wanted(index) else None
            for index, member in enumerate(members)
        ]


def batcher(memory: int = 2**30, timeout_s: float = 30.0) -> Batcher:
    admission = Admission(2, 8, timeout_s, MemoryBudget(memory))
    return Batcher(admission, wait_s=1.0, max_bytes=2**40)


def members(names: str, **common: Any) -> list[Fake]:
    passes: list[list[str]] = []
    gate = threading.Event()
    return [Fake(name, gate, passes, **common) for name in names]


def start(
    runner: Batcher, fakes: list[Fake], held: int = 100, arrived: dict[str, float] | None = None
) -> list[asyncio.Task[Body]]:
    return [
        asyncio.ensure_future(
            runner.run(
                lambda name=fake.name: f"alone {name}".encode(),  # type: ignore[misc]
                Timing(), held, False, fake, (arrived or {}).get(fake.name),
            )
        )
        for fake in fakes
    ]  # fmt: skip


async def running(fakes: list[Fake]) -> None:
    await eventually(lambda: bool(fakes[0].passes))


@pytest.mark.anyio
async def test_a_member_that_leaves_before_the_pass_is_dropped_and_holds_nothing() -> None:
    runner, fakes = batcher(), members("abc")
    tasks = start(runner, fakes)
    tasks[1].cancel()  # its client went away while the group gathers
    fakes[0].gate.set()
    assert await tasks[0] == b"a"
    assert await tasks[2] == b"c"
    assert fakes[0].passes == [["a", "c"]]
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
    assert_nothing_held(runner.admission)


@pytest.mark.anyio
async def test_a_member_that_leaves_during_the_pass_is_skipped_the_others_answered() -> None:
    runner, fakes = batcher(), members("abc")
    tasks = start(runner, fakes)
    await running(fakes)
    assert runner.admission.memory.reserved == 300  # each member's estimate, held
    tasks[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    assert runner.admission.memory.reserved == 300  # the pass still runs: held until it ends
    fakes[0].gate.set()
    assert [await task for task in tasks[1:]] == [b"b", b"c"]
    assert_nothing_held(runner.admission)


@pytest.mark.anyio
async def test_a_member_past_its_deadline_gets_504_the_others_their_answers() -> None:
    runner, fakes = batcher(timeout_s=30.0), members("ab")
    late = time.perf_counter() - 29.8  # came 29.8 s ago: its deadline passes during the pass
    tasks = start(runner, fakes, arrived={"a": late})
    with pytest.raises(DeadlineExceeded):
        await tasks[0]
    fakes[0].gate.set()
    assert await tasks[1] == b"b"
    assert fakes[0].passes == [["a", "b"]]
    assert_nothing_held(runner.admission)


@pytest.mark.anyio
async def test_when_every_member_leaves_the_pass_is_abandoned() -> None:
    runner, fakes = batcher(), members("ab")
    tasks = start(runner, fakes)
    await running(fakes)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    fakes[0].gate.set()
    await eventually(lambda: runner.admission.running == 0)  # the thread ends at its own pace
    assert_nothing_held(runner.admission)


@pytest.mark.anyio
async def test_an_error_of_the_pass_reaches_every_member_as_it_would_alone() -> None:
    runner, fakes = batcher(), members("ab", fails=MemoryError())
    tasks = start(runner, fakes)
    fakes[0].gate.set()
    for task in tasks:
        with pytest.raises(NotReady, match="out of memory"):
            await task
    assert_nothing_held(runner.admission)


@pytest.mark.anyio
async def test_an_error_of_one_answer_reaches_that_member_only() -> None:
    runner, fakes = batcher(), members("ab")
    fakes[1] = Fake("b", fakes[0].gate, fakes[0].passes, fails_alone=ValueError("b's own"))
    tasks = start(runner, fakes)
    fakes[0].gate.set()
    assert await tasks[0] == b"a"
    with pytest.raises(ValueError, match="b's own"):
        await tasks[1]
    assert_nothing_held(runner.admission)


@pytest.mark.anyio
async def test_each_member_is_admitted_alone_by_the_memory_budget() -> None:
    runner, fakes = batcher(memory=250), members("abc")  # room for two estimates of 100
    tasks = start(runner, fakes)
    fakes[0].gate.set()
    assert await tasks[0] == b"a"
    assert await tasks[1] == b"b"
    with pytest.raises(NotReady, match="memory_budget_bytes"):
        await tasks[2]
    assert_nothing_held(runner.admission)


@pytest.mark.anyio
async def test_a_group_alone_runs_the_plain_work() -> None:
    runner, fakes = batcher(), members("a")
    assert await start(runner, fakes)[0] == b"alone a"
    assert fakes[0].passes == []
    assert_nothing_held(runner.admission)


@pytest.mark.anyio
async def test_a_request_alone_in_its_worker_runs_at_once_without_a_group() -> None:
    runner, fakes = batcher(), members("ab")
    runner.alone = lambda: True  # the edge sees no other request in progress

    tasks = start(runner, fakes)

    assert runner._open == {}  # no group was opened: nothing to wait a turn of the loop for
    assert await asyncio.gather(*tasks) == [b"alone a", b"alone b"]
    assert fakes[0].passes == []
    assert_nothing_held(runner.admission)
