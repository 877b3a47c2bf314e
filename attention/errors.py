"""The errors the attention library raises.

Every error names the field (or tensor) at fault, so that a caller such as the HTTP service can
point a user at it without parsing messages::

    AttentionError                 base class; never raised itself
    ├── ConfigError                an invalid head configuration (d_model=64, num_heads=10)
    ├── ShapeError                 tensors whose shapes disagree with the configuration
    │   └── ParameterError         a state dict with missing, unexpected or mis-shaped weights
    └── InputError                 values the computation cannot take (ids out of range, NaN)
"""

from __future__ import annotations


class AttentionError(ValueError):
    """Base class of the library's errors; ``field`` names the offending input."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ConfigError(AttentionError):
    """A head configuration that breaks an invariant."""


class ShapeError(AttentionError):
    """An input whose shape disagrees with the configuration or with another input."""


class ParameterError(ShapeError):
    """A weight dictionary that does not fit the configured module."""


class InputError(AttentionError):
    """An input value outside what the computation accepts."""
