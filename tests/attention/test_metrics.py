"""attention.metrics: per-head entropy, mean distance and most-attended key of one sequence."""

from __future__ import annotations

import math

import torch

from attention.metrics import head_metrics

NONE_MASKED = torch.zeros(1, 4, dtype=torch.bool)


def test_uniform_weights_have_the_entropy_log_s() -> None:
    weights = torch.full((1, 4, 5), 0.2, dtype=torch.float64)
    metrics = head_metrics(weights, 5, NONE_MASKED)
    assert math.isclose(metrics.entropy.item(), math.log(5))


def test_attending_to_oneself_has_zero_entropy_and_zero_distance() -> None:
    weights = torch.eye(4, dtype=torch.float64)[None]  # (1, 4, 4)
    metrics = head_metrics(weights, 4, NONE_MASKED)
    assert metrics.entropy.item() == 0.0
    assert metrics.mean_distance.item() == 0.0
    assert metrics.top_key.tolist() == [[0, 1, 2, 3]]


def test_mean_distance_weights_each_key_by_its_distance() -> None:
    previous_token = torch.zeros(1, 4, 4, dtype=torch.float64)
    previous_token[0, 0, 0] = 1.0
    for query in range(1, 4):
        previous_token[0, query, query - 1] = 1.0
    metrics = head_metrics(previous_token, 4, NONE_MASKED)
    assert math.isclose(metrics.mean_distance.item(), 3 / 4)  # 0, then 1 for three queries


def test_extra_keys_count_in_entropy_but_not_in_distance() -> None:
    weights = torch.zeros(1, 4, 5, dtype=torch.float64)
    weights[..., 4] = 1.0  # every query looks only at the appended key (bias_k)
    metrics = head_metrics(weights, 4, NONE_MASKED)
    assert metrics.mean_distance.item() == 0.0
    assert metrics.top_key.tolist() == [[4, 4, 4, 4]]


def test_a_fully_masked_query_is_left_out_and_has_no_top_key() -> None:
    weights = torch.eye(4, dtype=torch.float64)[None].clone()
    weights[0, 2] = 0.0
    masked = torch.tensor([[False, False, True, False]])
    metrics = head_metrics(weights, 4, masked)
    assert metrics.top_key.tolist() == [[0, 1, -1, 3]]
    assert metrics.entropy.item() == 0.0
