"""A tiny BERT-format folder built in a test's temporary directory, and ways to break it.

Two layers of width 8, a WordPiece vocabulary of 12 tokens: it loads in milliseconds, so that
every broken variant can be built from a sound one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "man", "who", "swing", "sword", "##s", ".",
]  # fmt: skip
CONFIG: dict[str, Any] = {
    "architectures": ["BertModel"],
    "model_type": "bert",
    "vocab_size": len(VOCAB),
    "hidden_size": 8,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 16,
    "max_position_embeddings": 32,
    "type_vocab_size": 2,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}


def write_tokenizer(path: Path, vocab: list[str] = VOCAB) -> None:
    """A BERT WordPiece tokenizer.json: lower-casing, [CLS] text [SEP]."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    ids = {token: index for index, token in enumerate(vocab)}
    tokenizer = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    tokenizer.save(str(path))


def tiny_weights(config: dict[str, Any], seed: int = 0) -> dict[str, torch.Tensor]:
    """HuggingFace-named tensors of the shapes `config` implies, plus the unused pooler."""
    from attention.bert import BertConfig
    from attention.bert.loading import expected_weight_shapes

    generator = torch.Generator().manual_seed(seed)
    weights = {
        name: (
            torch.ones(shape)
            if name.endswith("LayerNorm.weight")
            else 0.1 * torch.randn(shape, generator=generator)
        )
        for name, shape in expected_weight_shapes(BertConfig.from_dict(config)).items()
    }
    width = config["hidden_size"]
    weights["pooler.dense.weight"] = torch.zeros(width, width)
    weights["pooler.dense.bias"] = torch.zeros(width)
    return weights


def write_weights(path: Path, weights: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    save_file({name: tensor.contiguous() for name, tensor in weights.items()}, str(path))


def write_tiny_bert(folder: Path, config: dict[str, Any] | None = None) -> Path:
    """config.json, model.safetensors and tokenizer.json of a sound tiny model in `folder`."""
    config = {**CONFIG, **(config or {})}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    write_weights(folder / "model.safetensors", tiny_weights(config))
    write_tokenizer(folder / "tokenizer.json")
    return folder


def edit_config(folder: Path, **changes: Any) -> None:
    """Rewrite config.json with `changes`, the weights left as they are."""
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
