"""Translate an AttentionRequest into padded tensors and run the model on them.

Everything mathematical happens in `attention`; this module only pads, masks the padding and
moves tensors to the device. `app.labels` names the rows, `app.results` cuts them back out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from app.http.schemas import AttentionRequest
from app.pipelines.random.labels import Labels
from attention import (
    AttentionConfig,
    AttentionModel,
    AttentionOutput,
    InputError,
    MultiHeadAttention,
    ShapeError,
    load_pytorch_state_dict,
    resolve_dtype,
)
from attention.multi_head import WeightsSink


def library_config(request: AttentionRequest) -> AttentionConfig:
    fields = request.config.model_dump(exclude={"dtype"})
    return AttentionConfig(**fields)


def check_config_fits(request: AttentionRequest) -> None:
    """config.scale multiplies every score in the computation's dtype: past its range it would
    be inf, and every output null, so it is refused as a number of the inputs is. (rope_base
    only divides: a huge base makes the rotations vanish, not overflow.)"""
    scale = request.config.scale
    if scale is not None:
        _require_fits(np.asarray(scale), "config.scale", resolve_dtype(request.config.dtype))


# -- tensors --------------------------------------------------------------------------------


@dataclass
class Batch:
    """Padded tensors of one request, ready for AttentionModel.forward."""

    token_embeddings: Tensor  # (B, L, d_model)
    key_embeddings: Tensor | None  # (B, S, kdim) or None for self-attention
    value_embeddings: Tensor | None  # (B, S, vdim)
    position_keys: bool
    key_padding_mask: Tensor | None  # (B, S) True = blocked
    attn_mask: Tensor | None


def build_batch(request: AttentionRequest, labels: Labels, model: AttentionModel) -> Batch:
    reference = model.tokens.ids.weight
    device, dtype = reference.device, reference.dtype
    if request.embeddings is not None:
        queries = padded_vectors(request.embeddings, "embeddings", model.config.d_model, dtype)
    else:
        queries = model.embed_tokens(labels.queries)
    keys = values = None
    if request.key_sequences is not None:
        _require_token_keys_fit(model.config)
        keys = model.embed_tokens(labels.keys, "key_sequences")
    elif request.key_embeddings is not None:
        keys = padded_vectors(request.key_embeddings, "key_embeddings", model.config.key_dim, dtype)
        if request.value_embeddings is not None:
            values = padded_vectors(
                request.value_embeddings, "value_embeddings", model.config.value_dim, dtype
            )
            _require_same_lengths(request.key_embeddings, request.value_embeddings)
    return Batch(
        token_embeddings=queries.to(device),
        key_embeddings=None if keys is None else keys.to(device),
        value_embeddings=None if values is None else values.to(device),
        position_keys=request.key_sequences is not None,
        key_padding_mask=_key_padding_mask(request, labels, device),
        attn_mask=_attn_mask(request, labels, dtype, device),
    )


def padded_vectors(
    rows: Sequence[Sequence[Sequence[float]]], field: str, width: int, dtype: torch.dtype
) -> Tensor:
    """Ragged B × L_b × width lists -> (B, L_max, width), zeros after each shorter sequence."""
    longest = max(len(sequence) for sequence in rows)
    out = torch.zeros(len(rows), longest, width, dtype=dtype)
    for row, sequence in enumerate(rows):
        array = _dense(sequence, f"{field}.{row}", fits=dtype)
        if array.ndim != 2 or array.shape[1] != width:
            raise ShapeError(
                f"{field}[{row}] has shape {array.shape}; expected ({len(sequence)}, {width}) "
                f"(vectors of width {width})",
                field=f"{field}.{row}",
            )
        out[row, : len(sequence)] = torch.from_numpy(array)
    return out


def _dense(
    value: Any, field: str, dtype: type = np.float64, fits: torch.dtype | None = None
) -> np.ndarray[Any, Any]:
    """`value` as an array; with `fits`, every number must be finite in that dtype."""
    try:
        array: np.ndarray[Any, Any] = np.asarray(value, dtype=dtype)
    except OverflowError:
        raise InputError(
            f"{field} holds a number too large for float64", field=_first_huge(value, field)
        ) from None
    except (ValueError, TypeError):
        raise ShapeError(
            f"{field} is not an array of numbers: every row must have the same length and "
            "hold numbers only",
            field=field,
        ) from None
    if fits is not None and array.dtype.kind == "f" and array.size:
        _require_fits(array, field, fits)
    return array


def _require_fits(array: np.ndarray[Any, Any], field: str, dtype: torch.dtype) -> None:
    """A number past the dtype's range would become ±inf and every result null: refuse it."""
    largest = torch.finfo(dtype).max
    # NaN and ±inf are the library's to name ("NaN or infinite"); finite numbers past the
    # dtype's range are this check's
    over = np.isfinite(array) & (np.abs(array) > largest)
    if not over.any():
        return
    index = np.unravel_index(int(np.argmax(over)), array.shape)
    where = ".".join([field, *(str(int(i)) for i in index)])
    raise InputError(
        f"{where} is {array[index]:g}, which does not fit {str(dtype).removeprefix('torch.')} "
        f"(largest {largest:g}); the computation would give infinities",
        field=where,
    )


def _first_huge(value: Any, field: str) -> str:
    """The path of the first integer too large for a float, for the error's location."""
    if isinstance(value, int) and not isinstance(value, bool):
        return field
    if isinstance(value, list):
        for index, item in enumerate(value):
            try:
                float(np.asarray(item, dtype=np.float64).sum())
            except OverflowError:
                return _first_huge(item, f"{field}.{index}")
            except (ValueError, TypeError):
                continue
    return field


def _require_token_keys_fit(config: AttentionConfig) -> None:
    if config.key_dim != config.d_model or config.value_dim != config.d_model:
        raise ShapeError(
            f"key_sequences are embedded at d_model={config.d_model}, so kdim={config.kdim} and "
            f"vdim={config.vdim} must be null or equal to it",
            field="key_sequences",
        )


def _require_same_lengths(keys: list[list[list[float]]], values: list[list[list[float]]]) -> None:
    if len(keys) != len(values) or any(
        len(k) != len(v) for k, v in zip(keys, values, strict=False)
    ):
        raise ShapeError(
            f"value_embeddings lengths {[len(v) for v in values]} differ from key_embeddings "
            f"lengths {[len(k) for k in keys]}",
            field="value_embeddings",
        )


def _key_padding_mask(
    request: AttentionRequest, labels: Labels, device: torch.device
) -> Tensor | None:
    lengths = labels.key_lengths
    longest = max(lengths)
    given = request.key_padding_mask
    if given is None and min(lengths) == longest:
        return None  # nothing to mask: the kernels run faster without a mask
    mask = torch.arange(longest)[None, :] >= torch.tensor(lengths)[:, None]  # (B, S) padding
    if given is not None:
        mask |= _user_padding_mask(given, lengths, longest)
    return mask.to(device)


def _user_padding_mask(given: list[list[bool]], lengths: list[int], longest: int) -> Tensor:
    if len(given) != len(lengths):
        raise ShapeError(
            f"key_padding_mask has {len(given)} rows; expected one per sequence ({len(lengths)})",
            field="key_padding_mask",
        )
    mask = torch.zeros(len(lengths), longest, dtype=torch.bool)
    for row, (flags, length) in enumerate(zip(given, lengths, strict=True)):
        if len(flags) not in (length, longest):
            expected = (
                f"{length}"
                if length == longest
                else f"{length} (the sequence's keys) or {longest} (the longest sequence's)"
            )
            raise ShapeError(
                f"key_padding_mask[{row}] has {len(flags)} entries; expected {expected}",
                field=f"key_padding_mask.{row}",
            )
        mask[row, : len(flags)] = torch.tensor(flags, dtype=torch.bool)
    return mask


def _attn_mask(
    request: AttentionRequest, labels: Labels, dtype: torch.dtype, device: torch.device
) -> Tensor | None:
    if request.attn_mask is None:
        return None
    rows = request.attn_mask
    is_bool = all(isinstance(value, bool) for row in rows for value in row)
    array = _dense(rows, "attn_mask", bool if is_bool else np.float64, fits=dtype)
    expected = (max(labels.query_lengths), max(labels.key_lengths))
    if array.shape != expected:
        # checked here: the library would also offer its (B·H, L, S) layout, which JSON can't send
        raise ShapeError(
            f"attn_mask has shape {array.shape}; expected {expected}: L × S, the longest query "
            "and key sequences (bias_k and the zero key are added by the service)",
            field="attn_mask",
        )
    tensor = torch.from_numpy(array)
    return tensor.to(device=device, dtype=torch.bool if is_bool else dtype)


# -- running --------------------------------------------------------------------------------


def run_model(
    request: AttentionRequest,
    labels: Labels,
    model: AttentionModel,
    layer: MultiHeadAttention | None,
    weights_sink: WeightsSink | None = None,
) -> AttentionOutput:
    batch = build_batch(request, labels, model)
    steps = request.output.step_names()
    result: AttentionOutput = model(
        batch.token_embeddings, batch.key_embeddings, batch.value_embeddings,
        position_keys=batch.position_keys,
        key_padding_mask=batch.key_padding_mask,
        attn_mask=batch.attn_mask,
        need_weights=needs_weights(request),
        trace=bool(steps),
        attention=layer,
        weights_sink=weights_sink,
    )  # fmt: skip
    return result


def needs_weights(request: AttentionRequest) -> bool:
    """Weights are computed when returned, summarised, or needed to flag fully masked queries.

    The fast path reports no fully masked queries. Only the client's masks and a window (queries
    past the end of shorter keys) can leave a query without a key: those give it up.
    """
    output = request.output
    may_mask_whole_rows = (
        request.key_padding_mask is not None
        or request.attn_mask is not None
        or request.config.window is not None
    )
    return output.attention != "none" or output.metrics or may_mask_whole_rows


def explicit_layer(request: AttentionRequest, model: AttentionModel) -> MultiHeadAttention | None:
    """A layer holding the request's own weights, or None to use the model's seeded ones."""
    if request.parameters is None:
        return None
    reference = model.tokens.ids.weight
    tensors = {
        name: torch.from_numpy(_dense(value, f"parameters.{name}", fits=reference.dtype)).to(
            reference.dtype
        )
        for name, value in request.parameters.items()
    }
    with torch.inference_mode(False):
        # a throwaway generator: the drawn weights are overwritten, the global RNG untouched
        layer = MultiHeadAttention(model.config, torch.Generator())
        load_pytorch_state_dict(layer, tensors)
    return layer.to(device=reference.device, dtype=reference.dtype).eval()
