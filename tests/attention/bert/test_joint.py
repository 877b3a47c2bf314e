"""A joined BERT pass gives every caller, to the bit, what its own call gives; the probe's rule
says which callers those are, and turns the others away.

The thread counts are the service's (1 per computation on 2 cores) and two: the rule is measured
per thread count, and the callers a test joins are those the rule measured here admits.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor

from attention import Interrupted, stop_when
from attention.bert import (
    BertConfig,
    BertLayer,
    BertModel,
    BertOutput,
    EncoderCall,
    JoinRule,
    join_rule,
    joint_forward,
    may_join,
)
from attention.bert.joint import MAX_SMALLEST_ROWS, PROBE_ROWS, probe
from attention.errors import InputError
from tests.attention.bert.conftest import (
    LoadedBert,
    requires_bundled_model,
    requires_model_libraries,
)

# widths that are not multiples of a vector's lanes: the row-wise steps' scalar tails
TINY = BertConfig(
    vocab_size=97,
    hidden_size=48,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=100,
    max_position_embeddings=160,
)


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny() -> BertModel:
    torch.manual_seed(0)
    return BertModel(TINY).eval()


def assert_same(joined: BertOutput, alone: BertOutput) -> None:
    assert joined.attention_layers == alone.attention_layers
    assert len(joined.hidden_states) == len(alone.hidden_states)
    assert len(joined.attentions) == len(alone.attentions)
    pairs = [
        (joined.last_hidden_state, alone.last_hidden_state),
        *zip(joined.hidden_states, alone.hidden_states, strict=True),
        *zip(joined.attentions, alone.attentions, strict=True),
    ]
    for ours, theirs in pairs:
        assert ours.shape == theirs.shape
        assert torch.equal(ours, theirs)


def random_call(
    model: BertModel, generator: torch.Generator, smallest: int, sequences: int = 1
) -> EncoderCall:
    """`sequences` of one padded length in smallest..130 rows, the shorter ones padded, and a
    random set of layers kept (the others on the fused kernel)."""
    config = model.config
    low = max(1, -(-smallest // sequences))  # rows = sequences × length >= smallest
    length = int(torch.randint(low, 130 // sequences + 1, (), generator=generator))
    ids = torch.randint(0, config.vocab_size, (sequences, length), generator=generator)
    mask = None
    if sequences > 1:
        lengths = torch.randint(1, length + 1, (sequences,), generator=generator)
        lengths[0] = length
        mask = torch.arange(length)[None] >= lengths[:, None]  # True at padding
    layers = config.num_hidden_layers
    count = int(torch.randint(0, layers + 1, (), generator=generator))
    kept = torch.randperm(layers, generator=generator)[:count]
    types = torch.randint(0, 2, ids.shape, generator=generator) if sequences > 2 else None
    return EncoderCall(ids, mask, types, [int(layer) for layer in kept])


def rule_here(model: BertModel) -> JoinRule:
    rule = join_rule(model)
    if rule is None:
        pytest.skip("this CPU, at this thread count, joins no caller of this model")
    return rule


def check_trials(model: BertModel, seed: int, trials: int) -> None:
    rule = rule_here(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        for _ in range(trials):
            count = int(torch.randint(2, 9, (), generator=generator))
            calls = [
                random_call(model, generator, rule.smallest_rows, sequences=1 + index % 3)
                for index in range(count)
            ]
            for call, joined in zip(calls, joint_forward(model, calls), strict=True):
                assert rule.admits(call.rows)
                assert_same(joined, call.alone(model))


def test_a_tiny_random_bert_joined_equals_each_alone(tiny: BertModel, threads: int) -> None:
    check_trials(tiny, seed=threads, trials=12)


@requires_bundled_model
@requires_model_libraries
def test_minilm_joined_equals_each_alone(bert: LoadedBert, threads: int) -> None:
    check_trials(bert.model, seed=10 + threads, trials=4)


@requires_bundled_model
@requires_model_libraries
def test_minilm_short_sentences_every_layer_kept(bert: LoadedBert, threads: int) -> None:
    """The benchmark's form: ten-word sentences, one each, every layer's weights."""
    rule = rule_here(bert.model)
    texts = [f"sentence {index} of ten words: the man swings the sword." for index in range(5)]
    calls = [EncoderCall(bert.tokenizer.encode([text]).input_ids) for text in texts]
    calls = [call for call in calls if rule.admits(call.rows)]
    with torch.inference_mode():
        for call, joined in zip(calls, joint_forward(bert.model, calls), strict=True):
            assert_same(joined, call.alone(bert.model))


def test_a_member_of_several_padded_sequences(tiny: BertModel, threads: int) -> None:
    rule = rule_here(tiny)
    ids = torch.randint(0, TINY.vocab_size, (3, 20), generator=torch.Generator().manual_seed(3))
    mask = torch.arange(20)[None] >= torch.tensor([20, 7, 13])[:, None]
    padded = EncoderCall(ids, mask, output_attentions=[0, 2])
    other = EncoderCall(ids[:1, : max(rule.smallest_rows, 9)], output_attentions=False)
    with torch.inference_mode():
        joined = joint_forward(tiny, [other, padded])
        assert_same(joined[1], padded.alone(tiny))
        assert_same(joined[0], other.alone(tiny))
    assert joined[1].attention_layers == (0, 2)
    assert joined[0].attentions == ()


def contiguous(tensors: tuple[Tensor, ...]) -> bool:
    return all(each.is_contiguous() and each.storage_offset() == 0 for each in tensors)


def test_each_member_holds_fresh_tensors_of_its_own(tiny: BertModel) -> None:
    calls = [EncoderCall(torch.full((1, 12), 5)), EncoderCall(torch.full((2, 9), 7))]
    with torch.inference_mode():
        joined = joint_forward(tiny, calls)
    for output in joined:
        assert contiguous(output.hidden_states)
        assert output.last_hidden_state is output.hidden_states[-1]


def test_the_pass_stops_at_a_layers_checkpoint(tiny: BertModel) -> None:
    calls = [EncoderCall(torch.full((1, 12), 5)), EncoderCall(torch.full((1, 9), 7))]
    with stop_when(lambda: True), pytest.raises(Interrupted), torch.inference_mode():
        joint_forward(tiny, calls)


def test_bfloat16_joined_equals_each_alone(threads: int) -> None:
    torch.manual_seed(1)
    check_trials(BertModel(TINY).to(torch.bfloat16).eval(), seed=20 + threads, trials=6)


def test_the_rule_is_measured_per_dtype(tiny: BertModel) -> None:
    torch.manual_seed(0)
    wide = BertModel(TINY).double().eval()
    rule = join_rule(wide)
    # whatever this CPU measures, a dtype is joined only as far as its own rule admits
    assert may_join(wide, 20) == (rule is not None and rule.admits(20))
    assert join_rule(wide) is rule  # measured once


@pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU")
def test_a_model_on_a_gpu_is_never_joined() -> None:
    on_gpu = BertModel(TINY).eval().cuda()
    assert join_rule(on_gpu) is None
    assert not may_join(on_gpu, 20)
    with pytest.raises(InputError, match="on the CPU"):
        joint_forward(on_gpu, [EncoderCall(torch.full((1, 12), 5, device="cuda"))] * 2)


# -- the rule -------------------------------------------------------------------------------


def test_the_rule_admits_from_its_smallest_rows_and_packs_passes() -> None:
    rule = JoinRule(smallest_rows=6, largest_rows=100, pass_rows=120)
    rows = [5, 6, 50, 101, 60, 30, 40]
    # 5 is under the rule, 101 over it; 6 + 50 + 60 = 116 fit one pass, 30 + 40 the next
    assert rule.passes(rows) == [[1, 2, 4], [5, 6]]
    assert rule.passes([30, 5]) == []  # a pass of one: that caller runs alone
    assert not rule.admits(5)
    assert rule.admits(100)
    assert not rule.admits(101)


def perturbed_probe(tiny: BertModel, differs: set[int]) -> JoinRule | None:
    """The probe on a layer whose row-wise steps round a caller of `differs` rows otherwise
    alone than joined (as MKL's small-M path does): where the probe must see it."""
    layer = tiny.layers[0]
    assert isinstance(layer, BertLayer)
    original = layer.feed_forward

    def feed_forward(x: Tensor, attended: Tensor) -> Tensor:
        out = original(x, attended)
        alone = x.dim() == 3  # the probe runs a caller alone as (1, rows, E), joined as (N, E)
        return out + 1e-3 if alone and x.shape[1] in differs else out

    layer.feed_forward = feed_forward  # type: ignore[method-assign]
    try:
        return probe(layer)
    finally:
        del layer.feed_forward


def test_the_probe_finds_the_smallest_row_count_from_which_rows_are_equal(
    tiny: BertModel, threads: int
) -> None:
    measured = rule_here(tiny)
    assert perturbed_probe(tiny, set()) == measured  # the same probe, measured again
    assert perturbed_probe(tiny, {2, 20}) == JoinRule(21)
    assert perturbed_probe(tiny, {MAX_SMALLEST_ROWS - 1}) == JoinRule(MAX_SMALLEST_ROWS)


def test_a_model_whose_rows_differ_at_32_or_more_is_never_joined(tiny: BertModel) -> None:
    assert MAX_SMALLEST_ROWS in PROBE_ROWS
    assert perturbed_probe(tiny, {MAX_SMALLEST_ROWS}) is None
    assert perturbed_probe(tiny, {PROBE_ROWS[-1]}) is None


def test_a_caller_under_the_measured_rule_is_not_offered(tiny: BertModel, threads: int) -> None:
    rule = rule_here(tiny)
    assert may_join(tiny, rule.smallest_rows)
    assert not may_join(tiny, rule.smallest_rows - 1)
    assert not may_join(tiny, rule.largest_rows + 1)


@requires_bundled_model
@requires_model_libraries
def test_minilm_callers_under_the_rule_would_differ_joined(bert: LoadedBert, threads: int) -> None:
    """Why the rule exists: callers of the largest row count it turns away, joined anyway,
    do not all get their own numbers (skipped where it turns nobody away)."""
    rule = rule_here(bert.model)
    if rule.smallest_rows == 1:
        pytest.skip("every row count joins exactly here")
    generator = torch.Generator().manual_seed(5)
    rows = rule.smallest_rows - 1
    calls = [
        EncoderCall(torch.randint(1000, 20000, (1, rows), generator=generator)) for _ in "abcdef"
    ]
    calls.append(EncoderCall(torch.randint(1000, 20000, (1, 40), generator=generator)))
    with torch.inference_mode():
        joined = joint_forward(bert.model, calls)
        same = [
            torch.equal(ours.last_hidden_state, call.alone(bert.model).last_hidden_state)
            for call, ours in zip(calls[:-1], joined[:-1], strict=True)
        ]
    assert not all(same)
