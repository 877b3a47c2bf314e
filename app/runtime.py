"""Where computations run: a bounded thread pool behind an admission gate, and the module cache.

The gate admits at most `max_concurrency` computations and lets at most `max_queue` more wait;
past that a request is refused at once (429) instead of hanging. A computation past its deadline
answers 504, but its slot is only given back when its thread has really finished, so a burst of
timeouts can never run more threads than configured.
"""

from __future__ import annotations

import asyncio
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
            return await asyncio.wait_for(
                asyncio.wrap_future(future), deadline - time.perf_counter()
            )
        except TimeoutError:
            raise DeadlineExceeded(
                f"the computation ran past its deadline of {self.timeout_s:g} s"
            ) from None

    async def _acquire(self, deadline: float) -> None:
        self.waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), max(0.0, deadline - time.perf_counter()))
        except TimeoutError:
            raise DeadlineExceeded(
                f"no computation slot freed within the deadline of {self.timeout_s:g} s"
            ) from None
        finally:
            self.waiting -= 1

    def _submit(self, work: Callable[[], T], timing: Timing) -> Future[T]:
        loop = asyncio.get_running_loop()

        def timed() -> T:
            began = time.perf_counter()
            try:
                with torch.inference_mode():
                    return work()
            finally:
                timing.compute_s = time.perf_counter() - began

        self.running += 1
        future = self._executor.submit(timed)

        def release(_: Future[T]) -> None:
            # the slot comes back when the thread is done, even after the request gave up
            loop.call_soon_threadsafe(self._release)

        future.add_done_callback(release)
        return future

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
