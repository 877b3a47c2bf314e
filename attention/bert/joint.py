"""Several callers' BERT forward passes as one, each result bitwise what its own call gives.

A BERT layer is mostly row-wise: the Q/K/V projection, the output projection, the residuals,
the LayerNorms and the feed-forward see one token's row at a time, and 85 % of a short
sequence's forward is those matrix products streaming the weights from memory; a joined product
reads them once for every caller. Only the attention core mixes rows. So, per layer:

    joined      the Q/K/V projection, on every caller's rows concatenated (ΣB·L, E)
    per caller  heads, the padding mask, Q×Kᵀ … weighted sum, on its own (B, L) rows, by the
                path its own call takes (weights kept, or the fused kernel): exactly as alone
    joined      the output projection, residual + LayerNorm, the feed-forward, residual +
                LayerNorm, on the concatenated rows

A row-wise step gives a row the same bits whatever rows surround it only where the CPU's matrix
product takes the same path for the caller's row count alone and for the joined count: measured
on torch 2.13 CPU (MKL), rows 1-3 differ at one thread, more at two (docs/performance.md,
micro-batching). So the rule is measured, not assumed: `join_rule` probes the model's own layer
once per (layer shapes, dtype, torch threads) and says from which row count a caller's rows come
out equal; a caller under it, or a model whose rows differ at `MAX_SMALLEST_ROWS` or more, is not
joined (float64 on this CPU: its rows differ at most counts). On the CPU only: a GPU's matrix
products choose their kernels by the whole product's shape, which the probe does not cover.

Each caller's slice of a joined tensor is copied into a fresh contiguous tensor wherever its own
call would hold one (a view at an offset may take another vectorised path).
`tests/attention/bert/test_joint.py` holds every result to `torch.equal` with the caller's call.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from attention.bert.model import BertLayer, BertModel, BertOutput
from attention.errors import InputError
from attention.interrupt import checkpoint
from attention.multi_head import AttendedHeads

# the probe's callers: every row count up to 32, then a few larger ones, up to a short
# sentence's 130 tokens (the gain of joining ends near there: docs/performance.md)
PROBE_ROWS: tuple[int, ...] = (*range(1, 33), 40, 64, 100, 130)
MAX_SMALLEST_ROWS = 32  # rows that differ at this count or more: the model is never joined


@dataclass(frozen=True)
class EncoderCall:
    """One caller's `BertModel.forward` arguments (no traces, no hook: those never join)."""

    input_ids: Tensor  # (B, L)
    key_padding_mask: Tensor | None = None  # (B, L), True at padding
    token_type_ids: Tensor | None = None  # (B, L)
    output_attentions: bool | Collection[int] = True

    @property
    def rows(self) -> int:
        """B·L: the rows of its linear layers."""
        return self.input_ids.numel()

    def alone(self, model: BertModel) -> BertOutput:
        """Its own call, the reference every joined result equals."""
        output: BertOutput = model(
            self.input_ids,
            key_padding_mask=self.key_padding_mask,
            token_type_ids=self.token_type_ids,
            output_attentions=self.output_attentions,
        )
        return output


@dataclass(frozen=True)
class JoinRule:
    """Which callers a joined pass gives the same bits as alone, as measured by the probe."""

    smallest_rows: int  # a caller's B·L from which its rows came out equal
    largest_rows: int = PROBE_ROWS[-1]  # the largest caller the probe tried
    pass_rows: int = sum(PROBE_ROWS)  # the most rows the probe joined in one pass

    def admits(self, rows: int) -> bool:
        return self.smallest_rows <= rows <= self.largest_rows

    def passes(self, rows: Sequence[int]) -> list[list[int]]:
        """The admitted callers' indices packed in order into passes of at most `pass_rows`
        rows; a pass of one is left out (that caller runs alone)."""
        packed: list[list[int]] = [[]]
        total = 0
        for index, count in enumerate(rows):
            if not self.admits(count):
                continue
            if total + count > self.pass_rows:
                packed.append([])
                total = 0
            packed[-1].append(index)
            total += count
        return [each for each in packed if len(each) > 1]


_measured: dict[Hashable, JoinRule | None] = {}
_measuring = threading.Lock()


def join_rule(model: BertModel) -> JoinRule | None:
    """The model's rule, probed on first use (tens of milliseconds); None: never joined."""
    key = probe_key(model)
    if key is None:
        return None
    with _measuring:  # one probe per key, whoever else asks meanwhile
        if key not in _measured:
            _measured[key] = probe(_layers(model)[0])
        return _measured[key]


def may_join(model: BertModel, rows: int) -> bool:
    """Whether a caller of `rows` (B·L) may be offered to a joined pass: by the model's rule
    when measured; when not yet, by the probe's range (`join_rule` decides in the pass)."""
    key = probe_key(model)
    if key is None:
        return False
    if key not in _measured:
        return PROBE_ROWS[0] <= rows <= PROBE_ROWS[-1]
    rule = _measured[key]
    return rule is not None and rule.admits(rows)


def probe_key(model: BertModel) -> Hashable | None:
    """What the rule depends on: the layer's shapes, the dtype, the torch threads; None where
    nothing is measured (not on the CPU)."""
    parameter = next(model.parameters())
    if parameter.device.type != "cpu":
        return None
    shapes = tuple(tuple(each.shape) for each in model.layers[0].parameters())
    return shapes, parameter.dtype, torch.get_num_threads()


def probe(layer: BertLayer) -> JoinRule | None:
    """Random rows of each count in PROBE_ROWS through the layer's row-wise steps, alone and
    joined with the others (in two orders, so that each sits at two offsets among others)."""
    generator = torch.Generator().manual_seed(0)
    width = layer.attention_norm.normalized_shape[0]
    parameter = next(layer.parameters())
    inputs = [
        torch.randn(rows, width, generator=generator, dtype=parameter.dtype) for rows in PROBE_ROWS
    ]
    differ: set[int] = set()
    with torch.inference_mode():
        alone = [_row_wise(layer, x.view(1, *x.shape)) for x in inputs]  # (1, rows, E): a call
        for order in (list(range(len(inputs))), list(reversed(range(len(inputs))))):
            joined = _row_wise(layer, torch.cat([inputs[i] for i in order]))
            first = 0
            for index in order:
                rows = PROBE_ROWS[index]
                ours = [step[first : first + rows] for step in joined]
                theirs = [step.reshape(rows, -1) for step in alone[index]]
                if not all(map(torch.equal, ours, theirs)):
                    differ.add(rows)
                first += rows
    smallest = max(differ, default=0) + 1
    return None if smallest > MAX_SMALLEST_ROWS else JoinRule(smallest)


def _row_wise(layer: BertLayer, x: Tensor) -> list[Tensor]:
    """Every row-wise step of a layer, as `joint_forward` runs them (x standing in for the
    attention core's concatenation: both are (…, E))."""
    attention = layer.attention
    projected = attention.self_projection(x)
    attended = attention.project_output(AttendedHeads(x)).output
    return [*projected, attended, layer.feed_forward(x, attended)]


def joint_forward(model: BertModel, calls: Sequence[EncoderCall]) -> list[BertOutput]:
    """`call.alone(model)` for each call, in one pass over the layers (see the module's text
    for what is joined). On the CPU; `join_rule` says which calls to join."""
    parameter = next(model.parameters())
    if parameter.device.type != "cpu":
        raise InputError(
            f"a joined pass runs models on the CPU; this one is on {parameter.device}",
            field="model",
        )
    members, first = [], 0
    for call in calls:
        members.append(_Member.start(model, call, first))
        first += call.rows
    x = torch.cat([member.hidden_states[0].reshape(member.rows, -1) for member in members])
    for index, layer in enumerate(_layers(model)):
        checkpoint()  # a caller that gave up stops here, one layer at most after it did
        attention = layer.attention
        projected = attention.self_projection(x)  # each (ΣB·L, ·)
        concat = torch.cat([member.attend(layer, index, projected) for member in members])
        attended = attention.project_output(AttendedHeads(concat)).output  # (ΣB·L, E)
        x = layer.feed_forward(x, attended)  # (ΣB·L, E)
        for member in members:
            member.keep(x)
    return [member.output() for member in members]


def _layers(model: BertModel) -> list[BertLayer]:
    return [layer for layer in model.layers if isinstance(layer, BertLayer)]


@dataclass
class _Member:
    """One caller in a joined pass: where its rows lie, and what its own call would keep."""

    call: EncoderCall
    first: int  # its first row in the joined (ΣB·L, E) tensors
    weighted: list[int]
    hidden_states: list[Tensor]
    attentions: list[Tensor] = field(default_factory=list)

    @classmethod
    def start(cls, model: BertModel, call: EncoderCall, first: int) -> _Member:
        model.check_inputs(call.input_ids, call.key_padding_mask, call.token_type_ids, ())
        embedded = model.embed(call.input_ids, call.token_type_ids)  # (B, L, E), as alone
        return cls(call, first, model.weighted_layers(call.output_attentions), [embedded])

    @property
    def rows(self) -> int:
        return self.call.rows

    @property
    def shape(self) -> tuple[int, int]:
        batch, length = self.call.input_ids.shape
        return batch, length

    def own(self, joined: Tensor) -> Tensor:
        """Its rows of a joined (ΣB·L, C) tensor as its own call holds them: a fresh (B, L, C)."""
        rows = joined[self.first : self.first + self.rows]
        return rows.clone().view(*self.shape, joined.shape[-1])

    def attend(self, layer: BertLayer, index: int, projected: tuple[Tensor, ...]) -> Tensor:
        """The attention core on its own rows, by its own call's path: (B·L, E) concatenated
        heads."""
        attention = layer.attention
        q, k, v = attention.positioned_heads(
            *attention.split_projection(tuple(self.own(part) for part in projected))
        )
        keep = index in self.weighted
        heads = attention.attended_heads(
            q, k, v, key_padding_mask=self.call.key_padding_mask, attn_mask=None,
            need_weights=keep, trace=False,
        )  # fmt: skip
        if keep and heads.weights is not None:
            self.attentions.append(heads.weights)  # (B, H, L, L)
        return heads.concat.reshape(self.rows, -1)

    def keep(self, joined: Tensor) -> None:
        self.hidden_states.append(self.own(joined))

    def output(self) -> BertOutput:
        return BertOutput(
            self.hidden_states[-1],
            tuple(self.hidden_states),
            tuple(self.attentions),
            attention_layers=tuple(self.weighted),
        )
