from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from app.http.errors import NotReady, TooLarge
from app.serving.memory import MemoryBudget, out_of_memory


def rejections(reason: str) -> float:
    return REGISTRY.get_sample_value("attention_rejections_total", {"reason": reason}) or 0.0


def test_the_memory_budget_refuses_what_would_pass_it_and_takes_back_what_is_released() -> None:
    budget = MemoryBudget(100)
    budget.reserve(60, retry_after_s=3)
    refused_before = rejections("memory_budget")

    with pytest.raises(NotReady) as busy:
        budget.reserve(50, retry_after_s=3)
    budget.release(60)
    budget.reserve(100, retry_after_s=3)

    assert busy.value.status_code == 503
    assert busy.value.headers == {"Retry-After": "3"}
    assert "memory_budget_bytes=100" in busy.value.message
    assert rejections("memory_budget") == refused_before + 1  # operators see the 503s


def test_an_allocation_failure_is_counted_as_a_rejection() -> None:
    refused_before = rejections("out_of_memory")

    assert out_of_memory(3).status_code == 503
    assert rejections("out_of_memory") == refused_before + 1


def test_a_request_larger_than_the_whole_budget_is_too_large() -> None:
    with pytest.raises(TooLarge, match="over the limit memory_budget_bytes=100"):
        MemoryBudget(100).reserve(101, retry_after_s=3)
