"""Where computations run: a bounded thread pool behind an admission gate.

The gate admits at most `max_concurrency` computations and lets at most `max_queue` more wait;
past that a request is refused at once (429) instead of hanging. A computation past its deadline
answers 504, and stops at its next checkpoint (a step, a layer, a token hashed): its slot is
given back when its thread has really finished, so a burst of timeouts can never run more threads
than configured. Each admitted request holds its estimated bytes in the worker's `MemoryBudget`
(app/serving/memory.py) from the moment it is queued until its thread ends.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import torch

from app.http.errors import DeadlineExceeded, Overloaded
from app.serving.memory import (
    TOP_PAD_BYTES,
    MemoryBudget,
    is_allocation_failure,
    out_of_memory,
)
from attention import Interrupted, stop_when

# the memory names are imported from here too (app/serving/batching.py, app/pipelines/cost.py)
__all__ = [
    "TOP_PAD_BYTES",
    "Admission",
    "MemoryBudget",
    "Timing",
    "is_allocation_failure",
    "out_of_memory",
]

T = TypeVar("T")


@dataclass
class Timing:
    queued_s: float = 0.0
    compute_s: float = 0.0


@dataclass(frozen=True)
class Stop:
    """The stop condition of one computation: its request gave up, or its deadline passed."""

    abandoned: threading.Event
    deadline: float

    def __call__(self) -> bool:
        return self.abandoned.is_set() or time.perf_counter() > self.deadline


NEVER_ABANDONED = threading.Event()  # a computation run inline cannot be left behind


class Admission:
    """Bounded concurrency plus a bounded wait queue, for work run in a private thread pool."""

    def __init__(
        self,
        max_concurrency: int,
        max_queue: int,
        timeout_s: float,
        memory: MemoryBudget | None = None,
    ) -> None:
        self.max_concurrency, self.max_queue, self.timeout_s = max_concurrency, max_queue, timeout_s
        self.memory = memory or MemoryBudget(2**62)
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix="attention")
        self._slots = asyncio.Semaphore(max_concurrency)
        self.running = 0  # threads computing now
        self.waiting = 0  # requests waiting for a slot
        self.on_finished: Callable[[Timing], object] = lambda _: None  # metrics, in the thread

    @property
    def retry_after_s(self) -> int:
        return max(1, round(self.timeout_s / 10))

    def refuse_if_full(self) -> None:
        """429 when every slot computes and the queue is full (micro-batching admits each
        member of a batch here, app/serving/batching.py)."""
        if self.running + self.waiting >= self.max_concurrency + self.max_queue:
            raise Overloaded(
                f"overloaded: {self.running} computations running and {self.waiting} waiting "
                f"(limits {self.max_concurrency} and {self.max_queue}); retry later",
                headers={"Retry-After": str(self.retry_after_s)},
            )

    async def run(
        self,
        work: Callable[[], T],
        timing: Timing | None = None,
        memory_bytes: int = 0,
        inline: bool = False,
    ) -> T:
        """`work`'s result, computed in a thread of the pool, or with `inline` on the event loop
        itself when a slot is free (a computation too small to be worth the hand-off)."""
        self.refuse_if_full()
        timing = timing or Timing()
        started = time.perf_counter()
        deadline = started + self.timeout_s
        if inline and not self._slots.locked():
            return self._run_inline(work, timing, deadline, memory_bytes)
        await self._queue(deadline, memory_bytes)
        timing.queued_s = time.perf_counter() - started
        abandoned = threading.Event()
        future = self._submit(work, timing, Stop(abandoned, deadline), memory_bytes)
        return await self._answer(future, abandoned, deadline)

    async def _queue(self, deadline: float, memory_bytes: int) -> None:
        """The request's bytes, then a slot: held from the queue on, since a waiting request
        holds its parsed body, and what it will compute must fit beside what runs when its
        turn comes."""
        self.memory.reserve(memory_bytes, self.retry_after_s)
        try:
            await self._acquire(deadline)
        except BaseException:
            self.memory.release(memory_bytes)
            raise

    async def _answer(
        self, future: asyncio.Future[T], abandoned: threading.Event, deadline: float
    ) -> T:
        """The computation's result by the deadline; past it, or when the client goes away, the
        computation is told to stop at its next checkpoint."""
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for costs a task and a waiter per call
            async with asyncio.timeout(deadline - time.perf_counter()):
                return await future
        except TimeoutError:
            abandoned.set()
            raise self._past_deadline() from None
        except asyncio.CancelledError:  # the client went away
            abandoned.set()
            raise

    def _run_inline(
        self, work: Callable[[], T], timing: Timing, deadline: float, memory_bytes: int
    ) -> T:
        """A computation small enough to run on the event loop, at once, with a slot free.

        Handing it to a thread costs more than it does (a queue, a thread wake-up, the GIL
        passed back and forth, a loop wake-up: ~100-300 µs on 2 cores against ~150 µs of work
        for 16 tokens, docs/performance.md). It holds its slot and its bytes as any other, and
        its deadline still stops it at a checkpoint; no other request is served meanwhile,
        which is why only the smallest are asked to (the setting `inline_max_bytes`).
        """
        self.memory.reserve(memory_bytes, self.retry_after_s)
        self.running += 1
        try:
            return self._compute(work, timing, Stop(NEVER_ABANDONED, deadline))
        finally:
            self.running -= 1
            self.memory.release(memory_bytes)
            self.on_finished(timing)

    async def _acquire(self, deadline: float) -> None:
        if not self._slots.locked():  # a free slot and nobody before us: no wait, no timer
            await self._slots.acquire()
            return
        self.waiting += 1
        try:
            async with asyncio.timeout(max(0.0, deadline - time.perf_counter())):
                await self._slots.acquire()
        except TimeoutError:
            raise DeadlineExceeded(
                f"no computation slot freed within the deadline of {self.timeout_s:g} s"
            ) from None
        finally:
            self.waiting -= 1

    def _submit(
        self, work: Callable[[], T], timing: Timing, stop: Stop, memory_bytes: int
    ) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        self.running += 1
        future = self._executor.submit(self._compute, work, timing, stop)

        def done(finished: Future[T]) -> None:
            # one wake-up of the event loop for both the answer and the freed slot (wrap_future
            # plus a release callback took two); the slot and the memory come back when the
            # thread is done, even after the request gave up
            self.memory.release(memory_bytes)
            loop.call_soon_threadsafe(self._finish, finished, waiter)
            self.on_finished(timing)

        future.add_done_callback(done)
        return waiter

    def _compute(self, work: Callable[[], T], timing: Timing, stop: Stop) -> T:
        began = time.perf_counter()
        try:
            with torch.inference_mode(), stop_when(stop):
                return work()
        except Interrupted:
            raise self._past_deadline() from None
        except Exception as error:
            if is_allocation_failure(error):
                raise out_of_memory(self.retry_after_s) from None
            raise
        finally:
            timing.compute_s = time.perf_counter() - began

    def _past_deadline(self) -> DeadlineExceeded:
        return DeadlineExceeded(f"the computation ran past its deadline of {self.timeout_s:g} s")

    def _finish(self, finished: Future[T], waiter: asyncio.Future[T]) -> None:
        self._release()
        if waiter.cancelled():  # the request gave up (deadline, disconnect)
            return
        if finished.cancelled():  # shut down before it ran
            waiter.cancel()
        elif (error := finished.exception()) is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(finished.result())

    def _release(self) -> None:
        self.running -= 1
        self._slots.release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
