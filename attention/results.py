"""A padded batch's result cut into one unpadded result per sequence, with its metrics.

A sequence of 3 tokens in a batch padded to 9 gets 3 × 3 attention: its own queries and keys,
plus bias_k and the zero key, which sit after the padding in the batch's key axis. Every tensor
is moved to the CPU once, as a whole batch, before it is cut: the pieces are views, and the
metrics are computed on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from attention.interrupt import checkpoint
from attention.metrics import HeadMetrics, head_metrics
from attention.multi_head import AttentionOutput
from attention.steps import LAYOUTS

KeyColumns = slice | Tensor


@dataclass
class SequenceResult:
    """One sequence's tensors, unpadded: L queries, S keys (its own, then any extra keys)."""

    output: Tensor  # (L, E)
    weights: Tensor | None  # (H, L, S)
    fully_masked: Tensor | None  # (H, L) bool
    steps: dict[str, Tensor]  # each in the shape of the step registry
    metrics: HeadMetrics | None  # (H,), (H,), (H, L)


def key_columns(length: int, longest: int, extra: int) -> KeyColumns:
    """Indices of a sequence's keys in the padded key axis: its own, then the extra keys."""
    if length == longest:
        return slice(0, longest + extra)
    return torch.cat([torch.arange(length), torch.arange(longest, longest + extra)])


def cut_step(name: str, tensor: Tensor, row: int, length: int, columns: KeyColumns) -> Tensor:
    """One sequence's part of a batched step tensor, by the step's layout in the registry."""
    layout = LAYOUTS[name]
    if layout == "tokens":
        return tensor[row, :length]  # (L, ·)
    if layout == "head_queries":
        return tensor[row, :, :length]  # (H, L, d)
    if layout == "head_keys":
        return tensor[row][:, columns]  # (H_kv, S, d)
    return tensor[row, :, :length][..., columns]  # (H, L, S)


def split_batch(
    result: AttentionOutput,
    query_lengths: Sequence[int],
    key_lengths: Sequence[int],
    extra_keys: int,
    *,
    steps: Sequence[str] = (),
    metrics: bool = False,
) -> list[SequenceResult]:
    """Cut `result` (batched over B sequences) into B sequence results, on the CPU."""
    longest = max(key_lengths)
    cpu = _on_cpu(result, steps)
    sequences = []
    for row, (length, keys) in enumerate(zip(query_lengths, key_lengths, strict=True)):
        checkpoint()
        columns = key_columns(keys, longest, extra_keys)
        sequences.append(_one_sequence(cpu, row, length, keys, columns, steps, metrics))
    return sequences


def _one_sequence(
    cpu: AttentionOutput,
    row: int,
    length: int,
    keys: int,
    columns: KeyColumns,
    steps: Sequence[str],
    metrics: bool,
) -> SequenceResult:
    weights = None if cpu.weights is None else cpu.weights[row, :, :length][..., columns]
    masked = None if cpu.fully_masked is None else cpu.fully_masked[row, :, :length]
    own_metrics = None
    if metrics and weights is not None and masked is not None:
        own_metrics = head_metrics(weights, keys, masked)
    return SequenceResult(
        output=cpu.output[row, :length],
        weights=weights,
        fully_masked=masked,
        steps={name: cut_step(name, cpu.trace[name], row, length, columns) for name in steps},
        metrics=own_metrics,
    )


def _on_cpu(result: AttentionOutput, steps: Sequence[str]) -> AttentionOutput:
    def cpu(tensor: Tensor | None) -> Tensor | None:
        return None if tensor is None else tensor.detach().cpu()

    output = cpu(result.output)
    assert output is not None
    return AttentionOutput(
        output=output,
        weights=cpu(result.weights),
        fully_masked=cpu(result.fully_masked),
        trace={name: result.trace[name].detach().cpu() for name in steps},
    )
