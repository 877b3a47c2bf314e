"""Tiny randomly initialised decoders built with transformers (test-only) and saved as Hugging
Face folders: config.json, model.safetensors and a word-level tokenizer.json.

Every shape the loader must get right has a variant: heads ≠ K/V heads, head_dim ≠ width / heads,
tied and untied embeddings, biases on and off, a sliding window shorter than the text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

WORDS = [
    "the",
    "man",
    "who",
    "passes",
    "sentence",
    "should",
    "swing",
    "sword",
    "once",
    "upon",
    "a",
    "time",
    "there",
    "was",
    "an",
    "old",
    "king",
    "and",
    "his",
    "three",
    "daughters",
    "lived",
    "in",
    "castle",
    "by",
    "sea",
    ",",
    ".",
]
VOCAB = ["<unk>", "<s>", "</s>", *dict.fromkeys(WORDS)]
VOCAB_SIZE = 48  # more rows than the tokenizer's ids, as real models often have
BASE: dict[str, dict[str, Any]] = {
    "gpt2": {"n_embd": 16, "n_layer": 2, "n_head": 4, "n_positions": 64},
    "llama": {
        "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
        "num_attention_heads": 4, "max_position_embeddings": 64,
    },
}  # fmt: skip
BASE["mistral"] = BASE["qwen2"] = BASE["llama"]
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "gpt2-tied": ("gpt2", {}),
    "gpt2-untied-gelu": ("gpt2", {"tie_word_embeddings": False, "activation_function": "gelu"}),
    "llama-gqa-wide-heads-biases": ("llama", {
        "num_key_value_heads": 2, "head_dim": 8, "attention_bias": True, "mlp_bias": True,
        "rope_theta": 500.0,
    }),
    "llama-mqa-tied": ("llama", {"num_key_value_heads": 1, "tie_word_embeddings": True}),
    "mistral-window": ("mistral", {"num_key_value_heads": 2, "sliding_window": 3}),
    "qwen2-tied": ("qwen2", {"num_key_value_heads": 2, "tie_word_embeddings": True}),
    "qwen2-window": ("qwen2", {
        "num_key_value_heads": 1, "use_sliding_window": True, "sliding_window": 4,
        "max_window_layers": 1,
    }),
}  # fmt: skip
"""name -> (model_type, config fields over the base)."""


def write_tokenizer(path: Path, *, bos: bool) -> None:
    """A word-level tokenizer.json; the Llama family's prepends <s>, GPT-2's adds nothing."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    ids = {token: index for index, token in enumerate(VOCAB)}
    tokenizer = Tokenizer(models.WordLevel(ids, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    if bos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", ids["<s>"])]
        )
    tokenizer.save(str(path))


def reference_config(model_type: str, fields: dict[str, Any]) -> Any:
    import transformers

    classes = {
        "gpt2": transformers.GPT2Config, "llama": transformers.LlamaConfig,
        "mistral": transformers.MistralConfig, "qwen2": transformers.Qwen2Config,
    }  # fmt: skip
    ids = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": None}
    return classes[model_type](
        vocab_size=VOCAB_SIZE, initializer_range=0.3, **ids, **BASE[model_type], **fields
    )


def write_tiny_decoder(folder: Path, variant: str, *, seed: int = 0, **save: Any) -> Path:
    """The variant's folder, its weights drawn from `seed`; `save` goes to save_pretrained
    (max_shard_size, for a sharded checkpoint)."""
    from transformers import AutoModelForCausalLM

    model_type, fields = VARIANTS[variant]
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(
        reference_config(model_type, fields), attn_implementation="eager"
    )
    with torch.no_grad():  # norms away from 1 and biases away from 0, so that they count
        for name, parameter in model.named_parameters():
            if "norm" in name or "ln_" in name or name.endswith("bias"):
                parameter.add_(0.2 * torch.randn_like(parameter))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), **save)
    write_tokenizer(folder / "tokenizer.json", bos=model_type != "gpt2")
    return folder


def reference_decoder(folder: Path) -> Any:
    """transformers' model from the folder, with the eager attention that returns weights."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation="eager").eval()


def reference_tokenizer(folder: Path) -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
