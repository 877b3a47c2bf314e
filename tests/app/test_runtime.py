from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import torch

from app.errors import DeadlineExceeded, Overloaded
from app.runtime import Admission, ModuleCache, Timing
from attention import AttentionConfig

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


# -- the module cache ---------------------------------------------------------------------------


def small_config(seed: int) -> AttentionConfig:
    return AttentionConfig(d_model=8, num_heads=2, vocab_size=4, seed=seed)


def test_the_cache_reuses_the_model_of_a_config_and_dtype() -> None:
    cache = ModuleCache(size=4, device=torch.device("cpu"))

    first = cache.get(small_config(0), torch.float32)

    assert cache.get(small_config(0), torch.float32) is first
    assert cache.get(small_config(0), torch.float64) is not first
    assert cache.get(small_config(1), torch.float32) is not first
    assert len(cache) == 3
    assert next(first.parameters()).dtype == torch.float32
    assert not first.training


def test_the_cache_evicts_the_least_recently_used_model() -> None:
    cache = ModuleCache(size=2, device=torch.device("cpu"))
    zero = cache.get(small_config(0), torch.float32)
    one = cache.get(small_config(1), torch.float32)
    assert cache.get(small_config(0), torch.float32) is zero  # now 1 is the least recent

    cache.get(small_config(2), torch.float32)

    assert len(cache) == 2
    assert cache.get(small_config(0), torch.float32) is zero
    assert cache.get(small_config(1), torch.float32) is not one


def test_a_model_built_inside_inference_mode_has_ordinary_parameters() -> None:
    cache = ModuleCache(size=1, device=torch.device("cpu"))

    with torch.inference_mode():
        model = cache.get(small_config(0), torch.float32)

    assert not any(parameter.is_inference() for parameter in model.parameters())
