"""Multi-head attention in pure PyTorch, every step observable.

The library imports torch and the standard library only; the HTTP service lives in ``app``.
"""

from attention.config import POSITIONAL_ENCODINGS, AttentionConfig, PositionalEncoding
from attention.device import resolve_device, resolve_dtype
from attention.errors import AttentionError, ConfigError, InputError, ParameterError, ShapeError
from attention.model import AttentionModel, Embedded
from attention.multi_head import AttentionOutput, MultiHeadAttention
from attention.weights import expected_shapes, export_pytorch_state_dict, load_pytorch_state_dict

STEPS: tuple[str, ...] = (
    "token_embeddings",
    "positional",
    "inputs",
    "q",
    "k",
    "v",
    "scores",
    "scaled_scores",
    "masked_scores",
    "attention",
    "head_outputs",
    "concat",
    "output",
)
"""Every step of the trace, in pipeline order (DESIGN.md §1)."""

__all__ = [
    "POSITIONAL_ENCODINGS",
    "STEPS",
    "AttentionConfig",
    "AttentionError",
    "AttentionModel",
    "AttentionOutput",
    "ConfigError",
    "Embedded",
    "InputError",
    "MultiHeadAttention",
    "ParameterError",
    "PositionalEncoding",
    "ShapeError",
    "expected_shapes",
    "export_pytorch_state_dict",
    "load_pytorch_state_dict",
    "resolve_device",
    "resolve_dtype",
]
