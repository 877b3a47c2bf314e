"""Choosing where tensors live: "auto" takes CUDA when a GPU is present, else the CPU."""

from __future__ import annotations

import torch

from attention.errors import ConfigError

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
}


def resolve_device(name: str = "auto") -> torch.device:
    """'auto', 'cpu', 'cuda' or 'cuda:N' -> a device that exists on this machine."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as error:
        raise ConfigError(
            f"device={name!r} is not a device name: {error}", field="device"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={name!r} was asked for but CUDA is not available", field="device"
        )
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(
            f"device={name!r}: only 'auto', 'cpu' and 'cuda' are supported", field="device"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            f"device={name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)",
            field="device",
        )
    return device


def resolve_dtype(name: str = "float32") -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise ConfigError(
            f"dtype={name!r} is not one of {', '.join(DTYPES)}", field="dtype"
        ) from None
