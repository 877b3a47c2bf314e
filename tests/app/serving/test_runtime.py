from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import torch

from app.http.errors import DeadlineExceeded, NotReady, Overloaded, TooLarge
from app.serving.memory import MemoryBudget
from app.serving.runtime import Admission, Timing
from attention import checkpoint

SHORT_DEADLINE_S = 0.2
WAIT_LIMIT_S = 5.0


async def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Blocks the work that waits on it until the test sets it (or ends)."""
    event = threading.Event()
    yield event
    event.set()


@pytest.mark.anyio
async def test_work_runs_in_a_worker_thread_in_inference_mode() -> None:
    admission = Admission(max_concurrency=1, max_queue=0, timeout_s=5)
    timing = Timing()
    try:
        thread, inference = await admission.run(
            lambda: (threading.current_thread().name, torch.is_inference_mode_enabled()), timing
        )
    finally:
        admission.shutdown()

    assert thread.startswith("attention")
    assert inference is True
    assert timing.compute_s > 0
    assert admission.running == 0


@pytest.mark.anyio
async def test_a_full_gate_answers_429_at_once_with_retry_after(release: threading.Event) -> None:
    admission = Admission(max_concurrency=1, max_queue=1, timeout_s=20)
    try:
        running = asyncio.create_task(admission.run(release.wait))
        await eventually(lambda: admission.running == 1)
        waiting = asyncio.create_task(admission.run(lambda: "second"))
        await eventually(lambda: admission.waiting == 1)

        with pytest.raises(Overloaded) as caught:
            await admission.run(lambda: "third")

        assert caught.value.status_code == 429
        assert caught.value.headers == {"Retry-After": "2"}
        assert "1 computations running and 1 waiting" in caught.value.message
        release.set()
        assert await running is True
        assert await waiting == "second"
    finally:
        admission.shutdown()


@pytest.mark.anyio
async def test_work_past_the_deadline_answers_504_but_keeps_its_slot_until_it_ends(
    release: threading.Event,
) -> None:
    admission = Admission(max_concurrency=1, max_queue=0, timeout_s=SHORT_DEADLINE_S)
    try:
        with pytest.raises(DeadlineExceeded) as caught:
            await admission.run(release.wait)
        assert caught.value.status_code == 504

        # the thread still computes: its slot is not free, so the gate is still full
        assert admission.running == 1
        with pytest.raises(Overloaded):
            await admission.run(lambda: "refused")

        release.set()
        await eventually(lambda: admission.running == 0)
        assert await admission.run(lambda: "admitted") == "admitted"
    finally:
        admission.shutdown()


@pytest.mark.anyio
async def test_waiting_for_a_slot_past_the_deadline_answers_504(release: threading.Event) -> None:
    admission = Admission(max_concurrency=1, max_queue=1, timeout_s=SHORT_DEADLINE_S)
    try:
        blocker = asyncio.create_task(admission.run(release.wait))
        await eventually(lambda: admission.running == 1)

        with pytest.raises(DeadlineExceeded, match="no computation slot"):
            await admission.run(lambda: "never runs")

        assert admission.waiting == 0
        release.set()
        with pytest.raises(DeadlineExceeded):  # the blocker itself ran past its deadline
            await blocker
    finally:
        admission.shutdown()


@pytest.mark.anyio
async def test_time_waiting_for_a_slot_is_measured(release: threading.Event) -> None:
    admission = Admission(max_concurrency=1, max_queue=1, timeout_s=20)
    timing = Timing()
    try:
        blocker = asyncio.create_task(admission.run(release.wait))
        await eventually(lambda: admission.running == 1)
        queued = asyncio.create_task(admission.run(lambda: None, timing))
        await eventually(lambda: admission.waiting == 1)
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(blocker, queued)
    finally:
        admission.shutdown()

    assert timing.queued_s >= 0.05


# -- the memory budget, held by admission --------------------------------------------------


@pytest.mark.anyio
async def test_admission_holds_the_estimate_while_the_computation_runs(
    release: threading.Event,
) -> None:
    admission = Admission(2, 0, 5.0, MemoryBudget(100))
    first = asyncio.ensure_future(admission.run(release.wait, memory_bytes=70))
    await eventually(lambda: admission.memory.reserved == 70)

    with pytest.raises(NotReady):
        await admission.run(lambda: None, memory_bytes=40)
    release.set()
    await first

    assert admission.memory.reserved == 0
    assert admission.running == 0
    assert await admission.run(lambda: "ran", memory_bytes=100) == "ran"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "failure",
    [
        MemoryError(),
        torch.OutOfMemoryError("CUDA out of memory"),
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"
        ),
    ],
)
async def test_an_allocation_failure_is_a_503_and_the_slot_comes_back(failure: Exception) -> None:
    admission = Admission(1, 0, 5.0, MemoryBudget(100))

    def allocate() -> None:
        raise failure

    with pytest.raises(NotReady) as caught:
        await admission.run(allocate, memory_bytes=10)

    assert "out of memory" in caught.value.message
    assert caught.value.headers["Retry-After"]
    assert admission.running == 0
    assert admission.memory.reserved == 0
    assert await admission.run(lambda: "healthy") == "healthy"


@pytest.mark.anyio
async def test_a_computation_past_its_deadline_stops_at_its_next_checkpoint() -> None:
    admission = Admission(1, 0, SHORT_DEADLINE_S)
    steps_run = []

    def long_computation() -> None:
        for step in range(10_000):
            checkpoint()
            steps_run.append(step)
            time.sleep(0.01)

    with pytest.raises(DeadlineExceeded):
        await admission.run(long_computation)
    await eventually(lambda: admission.running == 0)  # the thread ended, the slot is free

    assert len(steps_run) < 1000  # stopped long before its 100 s


# -- inline: small computations on the event loop ------------------------------------------


@pytest.mark.anyio
async def test_an_inline_computation_runs_on_the_event_loop_in_inference_mode() -> None:
    admission = Admission(1, 0, 5.0, MemoryBudget(100))
    finished: list[Timing] = []
    admission.on_finished = finished.append
    seen: list[tuple[int, bool]] = []

    def work() -> str:
        seen.append((admission.running, torch.is_inference_mode_enabled()))
        assert admission.memory.reserved == 40  # held while it runs
        return threading.current_thread().name

    thread = await admission.run(work, memory_bytes=40, inline=True)

    assert thread == threading.current_thread().name  # no hand-off
    assert seen == [(1, True)]
    assert admission.running == 0
    assert admission.memory.reserved == 0
    assert len(finished) == 1
    assert finished[0].compute_s > 0


@pytest.mark.anyio
async def test_an_inline_request_still_passes_the_memory_budget() -> None:
    admission = Admission(1, 0, 5.0, MemoryBudget(100))
    with pytest.raises(TooLarge):
        await admission.run(lambda: None, memory_bytes=101, inline=True)
    assert admission.memory.reserved == 0


@pytest.mark.anyio
async def test_an_inline_computation_past_its_deadline_stops_at_its_next_checkpoint() -> None:
    admission = Admission(1, 0, SHORT_DEADLINE_S)
    steps_run = []

    def long_computation() -> None:
        for step in range(10_000):
            checkpoint()
            steps_run.append(step)
            time.sleep(0.01)

    with pytest.raises(DeadlineExceeded):
        await admission.run(long_computation, inline=True)

    assert admission.running == 0
    assert len(steps_run) < 1000


@pytest.mark.anyio
async def test_an_inline_allocation_failure_is_a_503_and_the_budget_comes_back() -> None:
    admission = Admission(1, 0, 5.0, MemoryBudget(100))

    def allocate() -> None:
        raise MemoryError()

    with pytest.raises(NotReady):
        await admission.run(allocate, memory_bytes=10, inline=True)
    assert admission.running == 0
    assert admission.memory.reserved == 0


@pytest.mark.anyio
async def test_with_every_slot_taken_an_inline_request_waits_its_turn_in_a_thread(
    release: threading.Event,
) -> None:
    admission = Admission(1, 1, 5.0)
    try:
        first = asyncio.create_task(admission.run(release.wait))
        await eventually(lambda: admission.running == 1)
        second = asyncio.create_task(
            admission.run(lambda: threading.current_thread().name, inline=True)
        )
        await eventually(lambda: admission.waiting == 1)  # queued, not run past the gate
        release.set()
        await first
        assert (await second).startswith("attention")
    finally:
        release.set()
        admission.shutdown()
