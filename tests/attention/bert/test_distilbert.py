"""DistilBERT folders on the BERT encoder: its names mapped to BERT's, no token types;
attention and hidden states within 1e-4 of transformers' DistilBertModel."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attention.bert import load_bert
from tests.support.tiny_bert import VOCAB, save_random_transformers_model

pytest.importorskip("transformers")
TEXT = ["the man who swing the sword .", "the swords"]


def write_tiny_distilbert(folder: Path, *, with_head: bool) -> Path:
    import transformers

    config = transformers.DistilBertConfig(
        vocab_size=len(VOCAB), dim=8, n_layers=2, n_heads=2, hidden_dim=16,
        max_position_embeddings=32, pad_token_id=0,
    )  # fmt: skip
    model_class = transformers.DistilBertForMaskedLM if with_head else transformers.DistilBertModel
    return save_random_transformers_model(folder, model_class, config)


@pytest.mark.parametrize("with_head", [False, True])
@torch.inference_mode()
def test_distilbert_matches_transformers(tmp_path: Path, with_head: bool) -> None:
    from transformers import AutoModel

    folder = write_tiny_distilbert(tmp_path / "distilbert", with_head=with_head)
    model, tokenizer, _ = load_bert(folder)
    batch = tokenizer.encode(TEXT)
    ours = model(batch.input_ids, key_padding_mask=batch.key_padding_mask)
    reference = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    theirs = reference(batch.input_ids, attention_mask=batch.attention_mask, output_attentions=True)
    for row, length in enumerate(batch.lengths):
        for mine, expected in zip(ours.attentions, theirs.attentions, strict=True):
            torch.testing.assert_close(
                mine[row, :, :length, :length],
                expected[row, :, :length, :length],
                atol=1e-4,
                rtol=0,
            )
        torch.testing.assert_close(
            ours.last_hidden_state[row, :length],
            theirs.last_hidden_state[row, :length],
            atol=1e-4,
            rtol=0,
        )
