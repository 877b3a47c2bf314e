"""Where computations run: a bounded thread pool behind an admission gate, and the module cache.

The gate admits at most `max_concurrency` computations and lets at most `max_queue` more wait;
past that a request is refused at once (429) instead of hanging. A computation past its deadline
answers 504, but its slot is only given back when its thread has really finished, so a burst of
timeouts can never run more threads than configured.

`keep_freed_memory` tunes glibc's allocator for this workload: see its docstring.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import torch

from app.errors import DeadlineExceeded, Overloaded
from attention import AttentionConfig, AttentionModel

T = TypeVar("T")

M_TOP_PAD = -2  # glibc's mallopt parameter
TOP_PAD_BYTES = 64 * 1024 * 1024  # above the few-MB buffers of one large answer (batch: ~30 MB)


def keep_freed_memory(top_pad: int = TOP_PAD_BYTES) -> bool:
    """Let glibc keep `top_pad` free bytes at the top of each heap instead of returning them.

    A large answer is a few big buffers (weights, the JSON bytes) allocated in a worker thread.
    glibc gives such a thread its own arena, which hands freed memory back to the kernel at once,
    so every request faulted its pages in again: ~2 800 page faults and +5 ms (+25 %) for the
    large case, none in the main thread (docs/performance.md). With the padding they are reused;
    the price is up to `top_pad` of resident memory kept per arena once it has been used.
    MALLOC_TOP_PAD_ in the environment wins; elsewhere than glibc this does nothing.
    """
    if "MALLOC_TOP_PAD_" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_TOP_PAD, top_pad))


@dataclass
class Timing:
    queued_s: float = 0.0
    compute_s: float = 0.0


class Admission:
    """Bounded concurrency plus a bounded wait queue, for work run in a private thread pool."""

    def __init__(self, max_concurrency: int, max_queue: int, timeout_s: float) -> None:
        self.max_concurrency, self.max_queue, self.timeout_s = max_concurrency, max_queue, timeout_s
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix="attention")
        self._slots = asyncio.Semaphore(max_concurrency)
        self.running = 0  # threads computing now
        self.waiting = 0  # requests waiting for a slot
        self.on_finished: Callable[[Timing], object] = lambda _: None  # metrics, in the thread

    @property
    def retry_after_s(self) -> int:
        return max(1, round(self.timeout_s / 10))

    async def run(self, work: Callable[[], T], timing: Timing | None = None) -> T:
        if self.running + self.waiting >= self.max_concurrency + self.max_queue:
            raise Overloaded(
                f"overloaded: {self.running} computations running and {self.waiting} waiting "
                f"(limits {self.max_concurrency} and {self.max_queue}); retry later",
                headers={"Retry-After": str(self.retry_after_s)},
            )
        timing = timing or Timing()
        started = time.perf_counter()
        deadline = started + self.timeout_s
        await self._acquire(deadline)
        timing.queued_s = time.perf_counter() - started
        future = self._submit(work, timing)
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for costs a task and a waiter per call
            async with asyncio.timeout(deadline - time.perf_counter()):
                return await future
        except TimeoutError:
            raise DeadlineExceeded(
                f"the computation ran past its deadline of {self.timeout_s:g} s"
            ) from None

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

    def _submit(self, work: Callable[[], T], timing: Timing) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()

        def timed() -> T:
            began = time.perf_counter()
            try:
                with torch.inference_mode():
                    return work()
            finally:
                timing.compute_s = time.perf_counter() - began

        self.running += 1
        future = self._executor.submit(timed)

        def done(finished: Future[T]) -> None:
            # one wake-up of the event loop for both the answer and the freed slot (wrap_future
            # plus a release callback took two); the slot comes back when the thread is done,
            # even after the request gave up
            loop.call_soon_threadsafe(self._finish, finished, waiter)
            self.on_finished(timing)

        future.add_done_callback(done)
        return waiter

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


class ModuleCache:
    """The seeded model of each (config, dtype, device), built once; least recently used evicted."""

    def __init__(self, size: int, device: torch.device) -> None:
        self.size, self.device = size, device
        self._models: OrderedDict[tuple[AttentionConfig, torch.dtype], AttentionModel] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, config: AttentionConfig, dtype: torch.dtype) -> AttentionModel:
        key = (config, dtype)
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
        with torch.inference_mode(False):  # parameters must be ordinary tensors, not inference ones
            model = AttentionModel(config).to(device=self.device, dtype=dtype).eval()
        with self._lock:
            self._models[key] = model
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        return model

    def __len__(self) -> int:
        return len(self._models)
