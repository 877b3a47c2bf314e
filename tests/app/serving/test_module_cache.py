from __future__ import annotations

import torch

from app.serving.module_cache import ModuleCache, module_bytes
from attention import AttentionConfig
from attention.embedding import TokenVectorCache


def small_config(seed: int) -> AttentionConfig:
    return AttentionConfig(d_model=8, num_heads=2, vocab_size=4, seed=seed)


def cache_holding(models: int, dtype: torch.dtype = torch.float32) -> ModuleCache:
    """A cache with room for `models` of small_config's size in `dtype`."""
    size = models * module_bytes(small_config(0), dtype)
    return ModuleCache(size, torch.device("cpu"), TokenVectorCache())


def test_the_cache_reuses_the_model_of_a_config_and_dtype() -> None:
    cache = cache_holding(4, torch.float64)

    first = cache.get(small_config(0), torch.float32)

    assert cache.get(small_config(0), torch.float32) is first
    assert cache.get(small_config(0), torch.float64) is not first
    assert cache.get(small_config(1), torch.float32) is not first
    assert len(cache) == 3
    assert next(first.parameters()).dtype == torch.float32
    assert not first.training


def test_the_cache_evicts_the_least_recently_used_model() -> None:
    cache = cache_holding(2)
    zero = cache.get(small_config(0), torch.float32)
    one = cache.get(small_config(1), torch.float32)
    assert cache.get(small_config(0), torch.float32) is zero  # now 1 is the least recent

    cache.get(small_config(2), torch.float32)

    assert len(cache) == 2
    assert cache.get(small_config(0), torch.float32) is zero
    assert cache.get(small_config(1), torch.float32) is not one


def test_a_model_built_inside_inference_mode_has_ordinary_parameters() -> None:
    cache = cache_holding(1)

    with torch.inference_mode():
        model = cache.get(small_config(0), torch.float32)

    assert not any(parameter.is_inference() for parameter in model.parameters())


def test_the_cache_counts_bytes_and_evicts_until_they_fit() -> None:
    cache = cache_holding(3)  # three float32 models, or one float64 and one float32
    for seed in range(3):
        cache.get(small_config(seed), torch.float32)

    cache.get(small_config(0), torch.float64)

    assert cache.bytes <= cache.max_bytes
    assert (small_config(0), torch.float64) in cache
    assert len(cache) == 2  # two float32 models made room for the float64 one


def test_a_model_larger_than_the_cache_is_built_but_not_kept() -> None:
    cache = cache_holding(1)

    model = cache.get(small_config(0), torch.float64)

    assert model is not None
    assert len(cache) == 0
    assert cache.bytes == 0


def test_models_share_one_token_vector_cache() -> None:
    cache = cache_holding(4)

    cache.get(small_config(0), torch.float32).embed_tokens([["sword"]])
    cache.get(small_config(0), torch.float64).embed_tokens([["sword"]])

    assert len(cache.tokens) == 1  # same seed and width: the same vector
