"""RoBERTa folders on the BERT encoder: positions from pad_token_id + 1, weights under
``roberta.``; attention and hidden states within 1e-4 of transformers' RobertaModel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attention.bert import load_bert
from tests.support.tiny_bert import VOCAB, save_random_transformers_model

pytest.importorskip("transformers")
TEXT = "the man who swing the sword ."


def write_tiny_roberta(folder: Path, *, heads_only: bool) -> Path:
    import transformers

    config = transformers.RobertaConfig(
        vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=34, type_vocab_size=1, pad_token_id=1,
    )  # fmt: skip
    model_class = transformers.RobertaForMaskedLM if heads_only else transformers.RobertaModel
    return save_random_transformers_model(folder, model_class, config)


@pytest.mark.parametrize("heads_only", [False, True])
@torch.inference_mode()
def test_roberta_matches_transformers(tmp_path: Path, heads_only: bool) -> None:
    from transformers import AutoModel

    folder = write_tiny_roberta(tmp_path / "roberta", heads_only=heads_only)
    model, tokenizer, info = load_bert(folder)
    assert info.max_length == 32  # 34 rows, the first two before pad_token_id + 1
    ids = tokenizer.encode([TEXT]).input_ids
    assert 1 not in ids[0].tolist()  # transformers would take that id for padding
    ours = model(ids)
    reference = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    theirs = reference(ids, output_attentions=True)
    for mine, expected in zip(ours.attentions, theirs.attentions, strict=True):
        torch.testing.assert_close(mine, expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(ours.last_hidden_state, theirs.last_hidden_state, atol=1e-4, rtol=0)


def test_no_room_for_a_token_is_refused(tmp_path: Path) -> None:
    from attention.errors import ConfigError

    folder = write_tiny_roberta(tmp_path / "roberta", heads_only=False)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"max_position_embeddings": 2}))
    with pytest.raises(ConfigError, match="leaves no position for a token"):
        load_bert(folder)
