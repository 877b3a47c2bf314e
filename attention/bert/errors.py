"""The errors of loading a pretrained model, under the library's own tree::

    AttentionError                 (attention.errors)
    └── ModelError                 the pretrained model cannot be loaded
        ├── ModelFileError         a file of the model folder is missing or unreadable
        └── ModelDependencyError   safetensors or tokenizers is not installed

Mis-shaped or missing weights inside a readable file raise ``attention.errors.ParameterError``,
an invalid ``config.json`` raises ``attention.errors.ConfigError``.
"""

from __future__ import annotations

from pathlib import Path

from attention.errors import AttentionError


class ModelError(AttentionError):
    """The pretrained model cannot be loaded; a problem of the server, not of a request."""


class ModelFileError(ModelError):
    """A file of the model folder is missing or unreadable; ``path`` names it."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message, field=path.name)
        self.path = path


class ModelDependencyError(ModelError):
    """An optional package that reading the model needs is not installed."""

    def __init__(self, package: str) -> None:
        super().__init__(
            f"reading a pretrained model needs the '{package}' package: "
            "pip install 'attention-service[model]'",
            field=package,
        )
        self.package = package
