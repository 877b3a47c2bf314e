"""Parity with transformers (eager attention, float32) on tiny random decoders of every family
and shape: attention weights, hidden states and logits to 1e-4, tokens identical."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attention.decoder import load_decoder
from tests.support.tiny_decoder import (
    VARIANTS,
    reference_decoder,
    reference_tokenizer,
    write_tiny_decoder,
)

pytest.importorskip("transformers")
TEXT = "once upon a time there was an old king and his three daughters lived in castle by sea ."


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_decoder(tmp_path_factory.mktemp(request.param), request.param)


def test_tokens_are_the_folders_own(folder: Path) -> None:
    _, tokenizer, _ = load_decoder(folder)
    batch = tokenizer.encode([TEXT])
    assert batch.input_ids[0].tolist() == reference_tokenizer(folder)(TEXT)["input_ids"]


@torch.inference_mode()
def test_attention_hidden_states_and_logits_match(folder: Path) -> None:
    model, tokenizer, _ = load_decoder(folder)
    ids = tokenizer.encode([TEXT]).input_ids
    ours = model(ids, output_attentions=True)
    theirs = reference_decoder(folder)(ids, output_attentions=True, output_hidden_states=True)
    assert len(ours.attentions) == len(theirs.attentions)
    for layer, weights in ours.attentions.items():
        torch.testing.assert_close(weights, theirs.attentions[layer], atol=1e-4, rtol=0)
    assert len(ours.hidden_states) == len(theirs.hidden_states)
    for mine, reference in zip(ours.hidden_states, theirs.hidden_states, strict=True):
        torch.testing.assert_close(mine, reference, atol=1e-4, rtol=0)
    torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-4, rtol=0)
