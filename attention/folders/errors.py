"""The errors of loading a pretrained model, under the library's own tree::

    AttentionError                 (attention.errors)
    └── ModelError                 the pretrained model cannot be loaded
        ├── ModelFileError         a file of the model folder is missing, unreadable, malformed
        │                          or in a format this library does not read
        ├── ModelSizeError         config.json describes more parameter bytes than allowed
        └── ModelDependencyError   safetensors or tokenizers is not installed

Mis-shaped or missing weights raise ``attention.errors.ParameterError``, an invalid
``config.json`` raises ``attention.errors.ConfigError``. Messages name a file by its name within
the model folder, never by an absolute path, so that a service can show them to its clients;
``ModelFileError.path`` keeps the full path for logs.
"""

from __future__ import annotations

from pathlib import Path

from attention.errors import AttentionError


class ModelError(AttentionError):
    """The pretrained model cannot be loaded; a problem of the server, not of a request."""


class ModelFileError(ModelError):
    """A file of the model folder cannot be used; ``path`` is its full path, for logs only."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message, field=path.name)
        self.path = path


class ModelSizeError(ModelError):
    """The model config.json describes would take more memory than the caller allows."""

    def __init__(self, message: str, *, needed_bytes: int, max_bytes: int) -> None:
        super().__init__(message, field="max_bytes")
        self.needed_bytes = needed_bytes
        self.max_bytes = max_bytes


class ModelDependencyError(ModelError):
    """An optional package that reading the model needs is not installed."""

    def __init__(self, package: str) -> None:
        super().__init__(
            f"reading a pretrained model needs the '{package}' package: "
            "pip install 'attention-service[model]'",
            field=package,
        )
        self.package = package
