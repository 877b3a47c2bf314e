"""Loading and exporting weights in the layouts of ``torch.nn.MultiheadAttention``.

PyTorch packs Q, K and V into one ``in_proj_weight`` when kdim == vdim == embed_dim and keeps
``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` apart otherwise. Both layouts load into
either kind of module; what does not fit raises a ParameterError that lists what was expected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from attention.errors import InputError, ParameterError
from attention.multi_head import MultiHeadAttention

SEPARATE_KEYS = ("q_proj_weight", "k_proj_weight", "v_proj_weight")


def expected_shapes(module: MultiHeadAttention) -> dict[str, tuple[int, ...]]:
    """The state dict keys this module takes, with their shapes."""
    return {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}


def load_pytorch_state_dict(module: MultiHeadAttention, state_dict: Mapping[str, Tensor]) -> None:
    """Copy `state_dict` into `module` after checking every key, shape and value."""
    normalised = _to_module_layout(module, dict(state_dict))
    expected = expected_shapes(module)
    _check_keys_and_shapes(normalised, expected)
    reference = next(iter(module.state_dict().values()))
    with torch.no_grad():
        module.load_state_dict(
            {
                name: tensor.to(device=reference.device, dtype=reference.dtype)
                for name, tensor in normalised.items()
            }
        )


def export_pytorch_state_dict(module: MultiHeadAttention) -> dict[str, Tensor]:
    """A state dict that ``torch.nn.MultiheadAttention`` loads and computes the same with.

    Grouped K/V heads are repeated so that each query head gets its own copy: a GQA layer
    exports as the plain multi-head layer it is equivalent to.
    """
    config = module.config
    group = config.num_heads // config.kv_heads
    state = {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}
    if group == 1:
        return state
    q, k, v = (tensor.detach() for tensor in module.projection_weights())
    q_b, k_b, v_b = module.projection_biases()
    repeat = _repeat_heads_function(config.head_dim, group)
    k, v = repeat(k), repeat(v)
    if config.packed_projection:
        state["in_proj_weight"] = torch.cat([q, k, v])
    else:
        state.update(q_proj_weight=q.clone(), k_proj_weight=k, v_proj_weight=v)
    if q_b is not None and k_b is not None and v_b is not None:
        state["in_proj_bias"] = torch.cat(
            [q_b.detach(), repeat(k_b.detach()), repeat(v_b.detach())]
        )
    for name in ("bias_k", "bias_v"):
        if name in state:
            state[name] = repeat(state[name].view(-1)).view(1, 1, -1)
    return state


def _repeat_heads_function(head_dim: int, group: int) -> Callable[[Tensor], Tensor]:
    def repeat(rows: Tensor) -> Tensor:
        blocks = rows.reshape(-1, head_dim, *rows.shape[1:])  # (H_kv, d, ...)
        return blocks.repeat_interleave(group, dim=0).reshape(-1, *rows.shape[1:])

    return repeat


def _to_module_layout(module: MultiHeadAttention, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Pack separate q/k/v weights for a packed module, or split a packed one for a separate one."""
    packed_wanted = module.in_proj_weight is not None
    if (
        packed_wanted
        and "in_proj_weight" not in state
        and all(key in state for key in SEPARATE_KEYS)
    ):
        parts = [state.pop(key) for key in SEPARATE_KEYS]
        _check_widths(parts, module.config.d_model)
        state["in_proj_weight"] = torch.cat(parts)
    elif (
        not packed_wanted
        and "in_proj_weight" in state
        and not any(key in state for key in SEPARATE_KEYS)
    ):
        packed = state.pop("in_proj_weight")
        sizes = [module.config.d_model, module.config.kv_dim, module.config.kv_dim]
        if packed.dim() == 2 and packed.shape[0] == sum(sizes):
            state.update(zip(SEPARATE_KEYS, torch.split(packed, sizes), strict=True))
        else:
            state["in_proj_weight"] = packed
    return state


def _check_widths(parts: list[Tensor], d_model: int) -> None:
    for name, part in zip(SEPARATE_KEYS, parts, strict=True):
        if part.dim() != 2 or part.shape[1] != d_model:
            raise ParameterError(
                f"{name} has shape {tuple(part.shape)}; packing it needs {d_model} columns",
                field=f"parameters.{name}",
            )


def _check_keys_and_shapes(
    state: Mapping[str, Tensor], expected: Mapping[str, tuple[int, ...]]
) -> None:
    listing = ", ".join(f"{name} {shape}" for name, shape in expected.items())
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        problems = [f"missing {', '.join(missing)}"] * bool(missing)
        problems += [f"unexpected {', '.join(unexpected)}"] * bool(unexpected)
        field = f"parameters.{(missing or unexpected)[0]}"
        raise ParameterError(f"parameters: {'; '.join(problems)}. Expected: {listing}", field=field)
    for name, shape in expected.items():
        tensor = state[name]
        if tuple(tensor.shape) != shape:
            raise ParameterError(
                f"parameters.{name} has shape {tuple(tensor.shape)}; expected {shape}. "
                f"Expected: {listing}",
                field=f"parameters.{name}",
            )
        if not bool(torch.isfinite(tensor).all()):
            raise InputError(
                f"parameters.{name} holds NaN or infinite values", field=f"parameters.{name}"
            )
