"""The encoder itself: padding, traces, precision and the inputs it refuses."""

from __future__ import annotations

import pytest
import torch

from attention import STEPS, Interrupted, stop_when
from attention.bert import LayerOutput, load_bert
from attention.errors import InputError
from tests.attention.bert.conftest import (
    LoadedBert,
    requires_bundled_model,
    requires_model_libraries,
)

pytestmark = [requires_bundled_model, requires_model_libraries]

SENTENCES = [
    "The man who passes the sentence should swing the sword.",
    "Hello world",
    "Embeddings are unbelievably tokenized!",
]


def test_padded_keys_get_no_weight_and_padding_changes_nothing(bert: LoadedBert) -> None:
    batch = bert.tokenizer.encode(SENTENCES)
    with torch.inference_mode():
        padded = bert.model(batch.input_ids, key_padding_mask=batch.key_padding_mask)
        for index, n in enumerate(batch.lengths):
            alone = bert.model(batch.input_ids[index : index + 1, :n])
            together = padded.sequence_attentions(index, n)  # (N, H, n, n)
            assert torch.allclose(together, alone.sequence_attentions(0, n), atol=1e-5)
            to_padding = torch.stack(padded.attentions)[:, index, :, :, n:]  # (N, H, L, L - n)
            assert to_padding.abs().sum().item() == 0.0


def test_a_traced_layer_keeps_every_step_of_its_attention(bert: LoadedBert) -> None:
    batch = bert.tokenizer.encode(SENTENCES[:2])
    with torch.inference_mode():
        output = bert.model(
            batch.input_ids, key_padding_mask=batch.key_padding_mask, trace_layers=[3]
        )
    assert list(output.traces) == [3]
    trace = output.traces[3]
    assert set(trace) == set(STEPS[2:])  # "inputs" and every step from q on
    assert torch.equal(trace["inputs"], output.hidden_states[3])
    assert torch.equal(trace["attention"], output.attentions[3])
    assert trace["q"].shape == (2, 12, batch.input_ids.shape[1], 32)  # (B, H, L, d)


def test_float64_model_computes_the_same_attention(bert: LoadedBert) -> None:
    model64, tokenizer, info = load_bert(bert.path, dtype="float64")
    assert info.dtype == torch.float64
    batch = tokenizer.encode(["The sword swings."])
    with torch.inference_mode():
        ours = torch.stack(bert.model(batch.input_ids).attentions)
        wide = torch.stack(model64(batch.input_ids).attentions)
    assert wide.dtype == torch.float64
    assert torch.allclose(ours.double(), wide, atol=1e-5)


def test_model_refuses_ids_and_layers_it_does_not_have(bert: LoadedBert) -> None:
    ids = torch.tensor([[101, 30522, 102]])
    with pytest.raises(InputError, match="input_ids"):
        bert.model(ids)
    with pytest.raises(InputError, match="trace_layers"):
        bert.model(torch.tensor([[101, 102]]), trace_layers=[6])


def test_only_the_named_layers_keep_their_weights(bert: LoadedBert) -> None:
    batch = bert.tokenizer.encode(SENTENCES[:1])
    with torch.inference_mode():
        every = bert.model(batch.input_ids)
        some = bert.model(batch.input_ids, output_attentions=[4, 1, 99])
        none = bert.model(batch.input_ids, output_attentions=[])

    assert some.attention_layers == (1, 4)  # ascending, unknown layers ignored
    assert torch.allclose(some.attentions[0], every.attentions[1], atol=1e-6)
    assert torch.allclose(some.attentions[1], every.attentions[4], atol=1e-6)
    assert none.attentions == ()
    # the fused kernel computes the same hidden states as the traced path
    assert torch.allclose(none.last_hidden_state, every.last_hidden_state, atol=1e-5)


def test_a_caller_that_gives_up_stops_the_encoder_before_its_next_layer(
    bert: LoadedBert,
) -> None:
    batch = bert.tokenizer.encode(SENTENCES[:1])
    checks: list[int] = []

    def gave_up_after_two_layers() -> bool:
        checks.append(1)
        return len(checks) > 2

    with (
        torch.inference_mode(),
        stop_when(gave_up_after_two_layers),
        pytest.raises(Interrupted),
    ):
        bert.model(batch.input_ids, output_attentions=False)  # fused layers: one check each

    assert len(checks) == 3  # layers 0 and 1 ran; the check before layer 2 stopped it


def test_on_layer_sees_each_layer_as_it_is_computed_with_what_the_output_keeps(
    bert: LoadedBert,
) -> None:
    batch = bert.tokenizer.encode(SENTENCES[:2])
    seen: list[LayerOutput] = []
    with torch.inference_mode():
        output = bert.model(
            batch.input_ids,
            key_padding_mask=batch.key_padding_mask,
            output_attentions=[1, 4],
            trace_layers=[4],
            on_layer=seen.append,
        )
    assert [layer.index for layer in seen] == list(range(bert.info.config.num_hidden_layers))
    for layer in seen:
        assert torch.equal(layer.hidden_state, output.hidden_states[layer.index + 1])
    assert [layer.index for layer in seen if layer.weights is not None] == [1, 4]
    assert seen[4].weights is not None
    assert torch.equal(seen[4].weights, output.attentions[1])
    assert seen[4].trace is output.traces[4]
    assert seen[3].trace == {}


def test_on_layer_is_not_called_past_a_checkpoint_that_stops(bert: LoadedBert) -> None:
    batch = bert.tokenizer.encode(SENTENCES[:1])
    seen: list[int] = []
    with torch.inference_mode(), stop_when(lambda: len(seen) == 2), pytest.raises(Interrupted):
        bert.model(batch.input_ids, on_layer=lambda layer: seen.append(layer.index))
    assert seen == [0, 1]
