"""BertModel: a BERT encoder whose self-attention is the project's own MultiHeadAttention.

Each layer is post-LayerNorm, as in Devlin et al. (2019)::

    x = LayerNorm(x + Attention(x))             attention -> dense + residual + LayerNorm
    x = LayerNorm(x + W_2 · GELU(W_1 · x))      feed-forward, exact GELU, residual + LayerNorm

Padding is handled with ``key_padding_mask`` (True = padding): padded keys get exactly zero
weight. Padded *queries* still compute rows; callers keep the first ``lengths[i]`` positions.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attention.bert.config import BertConfig
from attention.errors import InputError, ShapeError
from attention.interrupt import checkpoint
from attention.multi_head import AttentionOutput, MultiHeadAttention


@dataclass
class BertOutput:
    """What one forward pass returns; `attentions` and `traces` only when asked for."""

    last_hidden_state: Tensor  # (B, L, E)
    hidden_states: tuple[Tensor, ...]  # N + 1 × (B, L, E): the embeddings, then each layer
    attentions: tuple[Tensor, ...] = ()  # K × (B, H, L, L), per kept layer and head
    traces: dict[int, dict[str, Tensor]] = field(default_factory=dict)  # layer -> step -> tensor
    attention_layers: tuple[int, ...] = ()  # the K layers of `attentions`, ascending

    def sequence_attentions(self, index: int, length: int) -> Tensor:
        """Sequence `index`'s attention without padding: (K, H, n, n) with n = `length`."""
        if not self.attentions:
            raise InputError("the forward pass was run without attentions", field="attentions")
        stacked = torch.stack([layer[index] for layer in self.attentions])  # (K, H, L, L)
        return stacked[..., :length, :length]


@dataclass(frozen=True)
class LayerOutput:
    """One layer's result, handed to `BertModel.forward`'s `on_layer` as soon as it exists."""

    index: int
    hidden_state: Tensor  # (B, L, E) leaving the layer
    weights: Tensor | None  # (B, H, L, L) when the layer's weights are kept
    trace: dict[str, Tensor]  # the layer's steps, "inputs" first, when the layer is traced


LayerHook = Callable[[LayerOutput], None]


class BertEmbeddings(nn.Module):
    """Word + absolute position + token type embeddings, then LayerNorm."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        width = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, width)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, width)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, width)
        self.layer_norm = nn.LayerNorm(width, eps=config.layer_norm_eps)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        """(B, L) ids and token types -> (B, L, E)."""
        _, length = input_ids.shape
        offset = self.config.position_offset  # RoBERTa: padding_idx + 1
        positions = torch.arange(offset, offset + length, device=input_ids.device)  # (L,)
        words = self.word_embeddings(input_ids)  # (B, L, E)
        types = self.token_type_embeddings(token_type_ids)  # (B, L, E)
        summed = words + types + self.position_embeddings(positions)[None]  # (B, L, E)
        normalised: Tensor = self.layer_norm(summed)
        return normalised


class BertLayer(nn.Module):
    """Self-attention and feed-forward, each followed by a residual and a LayerNorm."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        width, eps = config.hidden_size, config.layer_norm_eps
        self.attention = MultiHeadAttention(config.attention_config())
        self.attention_norm = nn.LayerNorm(width, eps=eps)
        self.intermediate = nn.Linear(width, config.intermediate_size)
        self.output = nn.Linear(config.intermediate_size, width)
        self.output_norm = nn.LayerNorm(width, eps=eps)

    def forward(
        self, x: Tensor, key_padding_mask: Tensor | None, *, need_weights: bool, trace: bool
    ) -> tuple[Tensor, AttentionOutput]:
        """(B, L, E) -> (B, L, E), with the attention module's own output."""
        attended: AttentionOutput = self.attention(
            x, key_padding_mask=key_padding_mask, need_weights=need_weights, trace=trace
        )
        return self.feed_forward(x, attended.output), attended

    def feed_forward(self, x: Tensor, attended: Tensor) -> Tensor:
        """The layer after its attention, row by row: (…, E) entering the layer and the
        attention's output -> (…, E). Any leading axes: a joined pass runs it on many callers'
        rows at once (attention/bert/joint.py)."""
        x = self.attention_norm(x + attended)  # (…, E)
        hidden = F.gelu(self.intermediate(x), approximate="none")  # (…, I)
        leaving: Tensor = self.output_norm(x + self.output(hidden))  # (…, E)
        return leaving


class BertModel(nn.Module):
    """The BERT encoder: embeddings and `num_hidden_layers` layers, no pooler head."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(
        self,
        input_ids: Tensor,
        *,
        key_padding_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        output_attentions: bool | Collection[int] = True,
        trace_layers: Collection[int] = (),
        on_layer: LayerHook | None = None,
    ) -> BertOutput:
        """Encode (B, L) token ids; `key_padding_mask` (B, L) is True at padding.

        `output_attentions` keeps every layer's (B, H, L, L) weights, or those of the layers it
        names; the others run on the fused kernel. `trace_layers` keeps the full
        MultiHeadAttention trace of those layers, plus ``inputs``: the (B, L, E) hidden state
        that entered the layer. `on_layer` sees each layer's result as soon as it is computed
        (a caller that streams layers; it runs in the forward's thread, and may block it).
        """
        self.check_inputs(input_ids, key_padding_mask, token_type_ids, trace_layers)
        x = self.embed(input_ids, token_type_ids)  # (B, L, E)
        hidden_states: list[Tensor] = [x]
        attentions: list[Tensor] = []
        traces: dict[int, dict[str, Tensor]] = {}
        weighted = self.weighted_layers(output_attentions)
        for index, layer in enumerate(self.layers):
            checkpoint()  # a caller that gave up stops here, one layer at most after it did
            trace = index in trace_layers
            attended: AttentionOutput
            keep = index in weighted
            x, attended = layer(x, key_padding_mask, need_weights=keep, trace=trace)
            if keep and attended.weights is not None:
                attentions.append(attended.weights)  # (B, H, L, L)
            if trace:
                traces[index] = {"inputs": hidden_states[-1], **attended.trace}
            hidden_states.append(x)
            if on_layer is not None:
                kept = attended.weights if keep else None
                on_layer(LayerOutput(index, x, kept, traces.get(index, {})))
        return BertOutput(x, tuple(hidden_states), tuple(attentions), traces, tuple(weighted))

    def embed(self, input_ids: Tensor, token_type_ids: Tensor | None) -> Tensor:
        """(B, L) ids -> (B, L, E), the hidden state entering the first layer."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        embedded: Tensor = self.embeddings(input_ids, token_type_ids)
        return embedded

    def weighted_layers(self, output_attentions: bool | Collection[int]) -> list[int]:
        """The layers whose weights `output_attentions` keeps, ascending."""
        every = range(self.config.num_hidden_layers)
        if isinstance(output_attentions, bool):
            return list(every) if output_attentions else []
        return sorted(set(output_attentions) & set(every))

    def check_inputs(
        self,
        input_ids: Tensor,
        key_padding_mask: Tensor | None,
        token_type_ids: Tensor | None,
        trace_layers: Collection[int],
    ) -> None:
        config = self.config
        if input_ids.dim() != 2 or input_ids.shape[1] == 0:
            raise ShapeError(
                f"input_ids has shape {tuple(input_ids.shape)}; expected (batch, length >= 1)",
                field="input_ids",
            )
        _check_range("input_ids", input_ids, config.vocab_size)
        if input_ids.shape[1] > config.max_tokens:
            raise InputError(
                f"{input_ids.shape[1]} tokens exceed the model's {config.max_tokens} positions",
                field="input_ids",
            )
        for name, tensor in (
            ("key_padding_mask", key_padding_mask),
            ("token_type_ids", token_type_ids),
        ):
            if tensor is not None and tensor.shape != input_ids.shape:
                raise ShapeError(
                    f"{name} has shape {tuple(tensor.shape)}; "
                    f"input_ids has {tuple(input_ids.shape)}",
                    field=name,
                )
        if token_type_ids is not None:
            _check_range("token_type_ids", token_type_ids, config.type_vocab_size)
        unknown = sorted(set(trace_layers) - set(range(config.num_hidden_layers)))
        if unknown:
            raise InputError(
                f"trace_layers {unknown} do not exist; "
                f"layers are 0..{config.num_hidden_layers - 1}",
                field="trace_layers",
            )


def _check_range(name: str, ids: Tensor, size: int) -> None:
    if ids.dtype not in (torch.int32, torch.int64):
        raise InputError(f"{name} must be integers, not {ids.dtype}", field=name)
    if bool(((ids < 0) | (ids >= size)).any()):
        raise InputError(f"{name} holds values outside 0..{size - 1}", field=name)
