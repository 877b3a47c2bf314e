from __future__ import annotations

import numpy as np
import torch

from app.http.schemas import OutputOptions
from app.pipelines.random.labels import Labels
from app.pipelines.random.results import cut_results
from attention import AttentionConfig, AttentionOutput

B, H, H_KV, L, S, D, E = 2, 4, 2, 5, 7, 3, 12  # S = 5 keys + bias_k + the zero key


def test_cut_results_gives_each_sequence_its_unpadded_part() -> None:
    config = AttentionConfig(d_model=E, num_heads=H, num_kv_heads=H_KV, add_bias_kv=True,
                             add_zero_attn=True)  # fmt: skip
    labels = Labels(queries=[list("abcde"), list("fg")], keys=[list("abcde"), list("fg")])
    weights = torch.rand(B, H, L, S)
    fully_masked = torch.zeros(B, H, L, dtype=torch.bool)
    fully_masked[1, 0, 1] = True
    result = AttentionOutput(output=torch.rand(B, L, E), weights=weights,
                             fully_masked=fully_masked,
                             trace={"k": torch.rand(B, H_KV, S, D)})  # fmt: skip

    results = cut_results(result, labels, config, OutputOptions(steps=["k"], attention="average"))

    short = results[1]
    assert short["tokens"] == ["f", "g"]
    assert short["key_tokens"] == ["f", "g", "<bias_k>", "<zero_attn>"]
    assert short["output"].shape == (2, E)
    assert short["steps"]["k"].shape == (H_KV, 4, D)
    own = weights[1, :, :2][..., [0, 1, 5, 6]].numpy()
    np.testing.assert_allclose(short["attention"], own.mean(axis=0))
    assert short["fully_masked_queries"] == [1]
    assert results[0]["fully_masked_queries"] == []
    assert results[0]["metrics"] is None
