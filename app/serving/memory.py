"""A worker's memory: the budget its requests' estimates hold, the 503 of an allocation that
fails anyway, and the allocator's tuning for this workload.

Each admitted request holds its estimated bytes in the worker's `MemoryBudget` from the moment
it is queued until its thread ends (app/serving/runtime.py); one that would pass the budget is
refused (503) instead of risking the process. `keep_freed_memory` tunes glibc's allocator: see
its docstring.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

import torch

from app.http.errors import NotReady, TooLarge
from app.serving.metrics import count_rejection

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


ALLOCATION_FAILURES = ("can't allocate memory", "out of memory", "not enough memory")


def is_allocation_failure(error: BaseException) -> bool:
    """MemoryError, torch.OutOfMemoryError, or the CPU allocator's RuntimeError."""
    if isinstance(error, MemoryError | torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and any(
        phrase in str(error).lower() for phrase in ALLOCATION_FAILURES
    )


def out_of_memory(retry_after_s: int) -> NotReady:
    """The 503 of a failed allocation, counted as one request refused (each member of a batch
    gets its own)."""
    count_rejection("out_of_memory")
    return NotReady(
        "out of memory: an allocation failed during the computation; the worker is healthy, "
        "retry later or ask for less",
        headers={"Retry-After": str(retry_after_s)},
    )


class MemoryBudget:
    """The bytes that requests waiting or computing may hold together, by their estimates."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reserved = 0
        self._lock = threading.Lock()  # released from worker threads

    def reserve(self, size: int, retry_after_s: int) -> None:
        if size > self.limit:
            raise TooLarge(
                f"the request's peak memory is estimated at {size:,} bytes, over the limit "
                f"memory_budget_bytes={self.limit:,} of a worker"
            )
        with self._lock:
            if self.reserved + size > self.limit:
                count_rejection("memory_budget")
                raise NotReady(
                    f"busy: computations in flight hold {self.reserved:,} of the "
                    f"memory_budget_bytes={self.limit:,} and this one needs {size:,}; retry later",
                    headers={"Retry-After": str(retry_after_s)},
                )
            self.reserved += size

    def release(self, size: int) -> None:
        with self._lock:
            self.reserved -= size
