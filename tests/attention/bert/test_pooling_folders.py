"""Sentence embeddings as the folder's sentence-transformers modules say (CLS, mean, max, last
token; Normalize or not), equal to SentenceTransformer.encode on the same folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attention.bert import Pooling, embed_texts, load_bert
from attention.errors import ConfigError
from tests.support.tiny_bert import write_tiny_bert

pytest.importorskip("sentence_transformers")
TEXTS = ["the man who swing the sword .", "the swords", "man"]


def sentence_folder(root: Path, mode: str, normalize: bool) -> Path:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models

    base = write_tiny_bert(root / "bert")
    modules = [models.Transformer(str(base)), models.Pooling(8, pooling_mode=mode)]
    if normalize:
        modules.append(models.Normalize())
    folder = root / f"{mode}-{normalize}"
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    return folder


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("mode", ["cls", "mean", "max", "lasttoken"])
def test_embeddings_follow_the_folders_modules(tmp_path: Path, mode: str, normalize: bool) -> None:
    from sentence_transformers import SentenceTransformer

    folder = sentence_folder(tmp_path, mode, normalize)
    model, tokenizer, info = load_bert(folder)
    assert info.pooling == Pooling(mode, normalize)  # type: ignore[arg-type]
    ours = embed_texts(model, tokenizer, TEXTS, pooling=info.pooling)
    theirs = SentenceTransformer(str(folder), device="cpu").encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_an_unsupported_pooling_is_refused(tmp_path: Path) -> None:
    folder = sentence_folder(tmp_path, "mean", True)
    config_path = folder / "1_Pooling" / "config.json"
    config = json.loads(config_path.read_text())
    config["pooling_mode"] = "mean_sqrt_len_tokens"
    config_path.write_text(json.dumps(config))
    with pytest.raises(ConfigError) as caught:
        load_bert(folder)
    assert caught.value.message == (
        "1_Pooling/config.json: pooling mean_sqrt_len_tokens is not supported "
        "(supported: exactly one of cls, mean, max, lasttoken)"
    )


def test_model_max_length_of_tokenizer_config_sets_the_token_limit(tmp_path: Path) -> None:
    folder = write_tiny_bert(tmp_path / "bert")
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 5}))
    assert load_bert(folder)[2].max_length == 5
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 10**30}))
    assert load_bert(folder)[2].max_length == 32  # the model's positions


def test_the_older_pooling_switches_are_read(tmp_path: Path) -> None:
    folder = sentence_folder(tmp_path, "mean", False)
    switches = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(switches))
    assert load_bert(folder)[2].pooling == Pooling("cls", normalize=False)
