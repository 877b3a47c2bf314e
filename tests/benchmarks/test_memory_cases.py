"""benchmarks/memory.py's cases are requests the service takes (the run itself is a benchmark:
docs/reliability.md and docs/models.md hold its tables)."""

from __future__ import annotations

import pytest

from app.http.schemas import AttentionRequest
from benchmarks.decoders import SMALL
from benchmarks.memory import CASES, DECODER, DECODER_CASES


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_case_is_a_valid_request(name: str) -> None:
    AttentionRequest.model_validate(CASES[name])


def test_the_decoder_cases_name_the_benchmarks_small_model() -> None:
    assert DECODER in SMALL
    assert {body["model"] for body in DECODER_CASES.values()} == {DECODER}
    assert set(DECODER_CASES) <= set(CASES)
