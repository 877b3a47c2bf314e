"""Multi-head attention in pure PyTorch, every step observable.

The library imports torch and the standard library only; the HTTP service lives in ``app``.
"""

from attention.config import POSITIONAL_ENCODINGS, AttentionConfig, PositionalEncoding
from attention.device import resolve_device, resolve_dtype
from attention.errors import AttentionError, ConfigError, InputError, ParameterError, ShapeError
from attention.interrupt import Interrupted, checkpoint, stop_when
from attention.model import AttentionModel, Embedded
from attention.multi_head import AttentionOutput, MultiHeadAttention
from attention.steps import REGISTRY, STEPS, Dims, Step, step_elements
from attention.weights import expected_shapes, export_pytorch_state_dict, load_pytorch_state_dict

__all__ = [
    "POSITIONAL_ENCODINGS",
    "REGISTRY",
    "STEPS",
    "AttentionConfig",
    "AttentionError",
    "AttentionModel",
    "AttentionOutput",
    "ConfigError",
    "Dims",
    "Embedded",
    "InputError",
    "Interrupted",
    "MultiHeadAttention",
    "ParameterError",
    "PositionalEncoding",
    "ShapeError",
    "Step",
    "checkpoint",
    "expected_shapes",
    "export_pytorch_state_dict",
    "load_pytorch_state_dict",
    "resolve_device",
    "resolve_dtype",
    "step_elements",
    "stop_when",
]
