"""The pretrained path keeps and estimates only what the answer uses."""

from __future__ import annotations

from typing import Any

import pytest

from app.http.schemas import AttentionRequest
from app.pipelines.encoder.cost import weighted_layers


def request(**output: Any) -> AttentionRequest:
    return AttentionRequest.model_validate(
        {"model": "all-minilm-l6-v2", "text": "a", "output": output}
    )


@pytest.mark.parametrize(
    ("output", "kept"),
    [
        ({"attention": "none"}, []),  # no weights: every layer on the fused kernel
        ({"attention": "none", "steps": ["q"]}, []),  # a trace keeps its own weights
        ({"attention": "per_head"}, [1, 4]),
        ({"attention": "average"}, [1, 4]),
        ({"attention": "none", "metrics": True}, [1, 4]),
        ({"attention": "none", "analysis": True}, [0, 1, 2, 3, 4, 5]),  # the rollout needs all
    ],
)
def test_weights_are_kept_only_for_what_the_answer_uses(
    output: dict[str, Any], kept: list[int]
) -> None:
    assert weighted_layers(request(**output), [4, 1], num_layers=6) == kept
