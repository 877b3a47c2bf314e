"""Decoder language models from a Hugging Face folder (GPT-2, Llama, Mistral, Qwen2), every
layer on the project's MultiHeadAttention, with a KV cache for generation.

Imports torch and the standard library only; ``safetensors`` and ``tokenizers`` are imported
when a model is loaded::

    model, tokenizer, info = load_decoder("path/to/folder")
    batch = tokenizer.encode(["Once upon a time"])
    out = model(batch.input_ids, output_attentions=True)   # logits, attentions per layer
"""

from attention.decoder.config import SUPPORTED_MODEL_TYPES, DecoderConfig
from attention.decoder.folder import read_decoder_config
from attention.decoder.loading import DecoderInfo, load_decoder
from attention.decoder.model import DecoderModel, DecoderOutput, KVCache
from attention.decoder.size import check_model_size, num_parameters, parameter_bytes

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "DecoderConfig",
    "DecoderInfo",
    "DecoderModel",
    "DecoderOutput",
    "KVCache",
    "check_model_size",
    "load_decoder",
    "num_parameters",
    "parameter_bytes",
    "read_decoder_config",
]
