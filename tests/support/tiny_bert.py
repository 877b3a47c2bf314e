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
    from attention.bert.weights import expected_weight_shapes

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


ENCODER_VARIANTS: dict[str, dict[str, Any]] = {
    "bert": {},
    # RoBERTa numbers positions from pad_token_id + 1: two more rows for the same 32 tokens
    "roberta": {"model_type": "roberta", "pad_token_id": 1, "max_position_embeddings": 34,
                "type_vocab_size": 1},
    "distilbert": {"model_type": "distilbert"},  # no token types: its config.json has none
}  # fmt: skip
"""model_type -> config.json fields over CONFIG, under BERT's names."""
DISTILBERT_CONFIG_NAMES = {"hidden_size": "dim", "num_hidden_layers": "n_layers",
                           "num_attention_heads": "n_heads", "intermediate_size": "hidden_dim",
                           "hidden_act": "activation"}  # fmt: skip


def write_tiny_encoder(
    folder: Path, model_type: str, *, pooling: str | None = None, seed: int = 0
) -> Path:
    """A tiny folder of `model_type` (bert, roberta, distilbert) as transformers saves it: the
    family's config.json names, its tensors' names (under ``roberta.``, DistilBERT's own), and
    with `pooling` (cls, mean, max, lasttoken) sentence-transformers' modules.json and
    1_Pooling/config.json."""
    from attention.bert import BertConfig

    config = {**CONFIG, **ENCODER_VARIANTS[model_type]}
    weights = tiny_weights(config, seed)
    if model_type == "distilbert":
        weights = {_distilbert_name(name): tensor for name, tensor in weights.items()
                   if "token_type" not in name and not name.startswith("pooler.")}  # fmt: skip
        config = {DISTILBERT_CONFIG_NAMES.get(key, key): value for key, value in config.items()
                  if key != "type_vocab_size"}  # fmt: skip
    elif model_type == "roberta":
        weights = {f"roberta.{name}": tensor for name, tensor in weights.items()}
    BertConfig.from_dict(config)  # a writer's mistake shows here, not as a loading failure
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    write_weights(folder / "model.safetensors", weights)
    write_tokenizer(folder / "tokenizer.json")
    if pooling is not None:
        write_pooling(folder, pooling)
    return folder


def _distilbert_name(name: str) -> str:
    from attention.bert.weights import _DISTILBERT_PARTS

    name = name.replace("encoder.layer.", "transformer.layer.")
    for theirs, ours in _DISTILBERT_PARTS[1:]:
        name = name.replace(ours, theirs)
    return f"distilbert.{name}"


def write_pooling(folder: Path, mode: str, *, normalize: bool = False) -> None:
    """sentence-transformers' modules: the encoder, Pooling in `mode`, Normalize if asked."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
    ]  # fmt: skip
    if normalize:
        modules.append(
            {"idx": 2, "name": "2", "path": "2_Normalize",
             "type": "sentence_transformers.models.Normalize"}
        )  # fmt: skip
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    pooling = {"word_embedding_dimension": CONFIG["hidden_size"], "pooling_mode": mode}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))


def save_random_transformers_model(folder: Path, model_class: Any, config: Any) -> Path:
    """`model_class(config)` of transformers with weights drawn from N(0, 0.3) (seed 0), saved
    with its own save_pretrained and the tiny WordPiece tokenizer: a reference for parity."""
    torch.manual_seed(0)
    model = model_class(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.3)
    model.save_pretrained(str(folder))
    write_tokenizer(folder / "tokenizer.json")
    return folder
