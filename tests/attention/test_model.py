"""AttentionModel: embedding and positions in front of the attention layer, and its trace."""

from __future__ import annotations

import pytest
import torch

from attention import STEPS, AttentionConfig, AttentionModel
from attention.positional import sinusoidal_table
from tests.attention.helpers import assert_close, config

F64 = torch.float64
SENTENCES = [["the", "man", "who", "passes"], ["the", "sentence", "should", "swing"]]


def _documented_shapes(
    cfg: AttentionConfig, length: int, source_length: int
) -> dict[str, tuple[int, ...]]:
    """The step registry's shapes (attention/steps.py), one sequence; S counts bias_k and the
    zero key."""
    heads, kv_heads, d = cfg.num_heads, cfg.kv_heads, cfg.head_dim
    return {
        "token_embeddings": (length, cfg.d_model),
        "positional": (length, cfg.d_model),
        "inputs": (length, cfg.d_model),
        "q": (heads, length, d),
        "k": (kv_heads, source_length, d),
        "v": (kv_heads, source_length, d),
        "scores": (heads, length, source_length),
        "scaled_scores": (heads, length, source_length),
        "masked_scores": (heads, length, source_length),
        "attention": (heads, length, source_length),
        "head_outputs": (heads, length, d),
        "concat": (length, heads * d),
        "output": (length, cfg.d_model),
    }


def test_self_attention_trace_has_every_step_in_order_with_the_documented_shape() -> None:
    cfg = config(d_model=16, num_heads=4, num_kv_heads=2, positional_encoding="sinusoidal")
    model = AttentionModel(cfg)
    trace = model(model.embed_tokens(SENTENCES), trace=True).trace
    assert tuple(trace) == STEPS
    for name, shape in _documented_shapes(cfg, 4, 4).items():
        assert tuple(trace[name].shape) == (2, *shape), name


def test_cross_attention_trace_counts_the_extra_keys() -> None:
    cfg = config(
        d_model=16,
        num_heads=4,
        num_kv_heads=1,
        kdim=6,
        vdim=3,
        add_bias_kv=True,
        add_zero_attn=True,
    )
    model = AttentionModel(cfg)
    keys, values = torch.randn(2, 5, 6), torch.randn(2, 5, 3)
    trace = model(model.embed_tokens(SENTENCES), keys, values, trace=True).trace
    assert tuple(trace) == STEPS
    for name, shape in _documented_shapes(cfg, 4, 5 + 2).items():
        assert tuple(trace[name].shape) == (2, *shape), name


def test_inputs_are_token_embeddings_plus_positions() -> None:
    model = AttentionModel(config(positional_encoding="sinusoidal")).double()
    trace = model(model.embed_tokens(SENTENCES), trace=True).trace
    assert torch.equal(trace["positional"][1], sinusoidal_table(4, 8, dtype=F64))
    assert torch.equal(trace["inputs"], trace["token_embeddings"] + trace["positional"])


@pytest.mark.parametrize("encoding", ["none", "rope", "alibi"])
def test_encodings_that_act_inside_attention_add_zero_positions(encoding: str) -> None:
    model = AttentionModel(config(positional_encoding=encoding))
    trace = model(model.embed_tokens(SENTENCES), trace=True).trace
    assert not trace["positional"].any()
    assert torch.equal(trace["inputs"], trace["token_embeddings"])


def test_without_trace_or_weights_only_the_output_comes_back() -> None:
    model = AttentionModel(config())
    result = model(model.embed_tokens(SENTENCES), need_weights=False)
    assert result.weights is None
    assert result.fully_masked is None
    assert result.trace == {}


def _cross_model() -> tuple[AttentionModel, torch.Tensor, torch.Tensor]:
    model = AttentionModel(config(positional_encoding="sinusoidal")).double()
    return model, model.embed_tokens(SENTENCES), model.embed_tokens([["a", "b", "c"]] * 2)


def test_key_tokens_get_positions_when_asked() -> None:
    model, queries, keys = _cross_model()
    positioned = model.embed(keys).inputs
    expected = model.attention(model.embed(queries).inputs, positioned, positioned).output
    assert_close(model(queries, keys, position_keys=True).output, expected, F64)


def test_key_vectors_are_used_as_they_are_by_default() -> None:
    model, queries, keys = _cross_model()
    expected = model.attention(model.embed(queries).inputs, keys, keys).output
    assert_close(model(queries, keys).output, expected, F64)


def test_padded_sequence_gives_what_it_gives_alone() -> None:
    model = AttentionModel(
        config(d_model=16, num_heads=4, positional_encoding="sinusoidal")
    ).double()
    short, long = ["the", "sword"], ["should", "swing", "the", "sword", "now"]
    padding = torch.tensor([[False, False, True, True, True], [False] * 5])
    together = model(model.embed_tokens([short, long]), key_padding_mask=padding, trace=True)
    alone = model(model.embed_tokens([short]), trace=True)
    assert_close(together.output[0, :2], alone.output[0], F64)
    assert_close(together.trace["attention"][0, :, :2, :2], alone.trace["attention"][0], F64)
    assert not together.trace["attention"][0, :, :, 2:].any()
