"""DecoderModel: GPT-2, Llama, Mistral and Qwen2 on the project's own MultiHeadAttention.

Every layer is pre-norm::

    x = x + Attention(Norm(x))      causal (and windowed where the layer has a window)
    x = x + MLP(Norm(x))            GPT-2: W_2 · GELU(W_1 · x); the others: SwiGLU
    logits = LM_head(Norm(x))

Keys and values of the positions already seen are kept in a `KVCache`, so that generation
feeds one new token per step; the causal mask is then bottom-right aligned (the new query at
position p sees keys 0..p), which is why the layer builds its own bias rather than use the
module's top-left one. RoPE rotates q and k at their absolute positions.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attention import functional as AF
from attention.decoder.config import DecoderConfig
from attention.errors import InputError, ShapeError
from attention.interrupt import checkpoint
from attention.multi_head import AttentionOutput, MultiHeadAttention
from attention.positional import apply_rope


@dataclass
class KVCache:
    """Each layer's rotated keys and values so far: (B, H_kv, S, d) each."""

    keys: list[Tensor] = field(default_factory=list)
    values: list[Tensor] = field(default_factory=list)

    @property
    def length(self) -> int:
        """Positions seen so far (read between passes: within one, layers append in turn)."""
        return self.length_of(0)

    def length_of(self, layer: int) -> int:
        return self.keys[layer].shape[2] if layer < len(self.keys) else 0

    def append(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Layer `layer`'s keys and values with (B, H_kv, L, d) new ones after them."""
        if layer == len(self.keys):
            self.keys.append(k)
            self.values.append(v)
        else:
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=2)
            self.values[layer] = torch.cat([self.values[layer], v], dim=2)
        return self.keys[layer], self.values[layer]


@dataclass
class DecoderOutput:
    """One forward pass: logits for every position, and what was asked for."""

    logits: Tensor  # (B, L, V)
    hidden_states: tuple[Tensor, ...]  # N + 1 × (B, L, E): embeddings, each layer, the last normed
    attentions: dict[int, Tensor] = field(default_factory=dict)  # layer -> (B, H, L, S)
    traces: dict[int, dict[str, Tensor]] = field(default_factory=dict)  # layer -> step -> tensor


def decoder_bias(
    length: int,
    source_length: int,
    window: int | None,
    key_padding_mask: Tensor | None,
    like: Tensor,
) -> Tensor | None:
    """(B|1, 1, L, S) additive bias for L new queries after S - L cached keys: query i, at
    position S - L + i, sees keys j <= its position and, with a window, its position - j < window;
    `key_padding_mask` (B, S) True hides a key. None when nothing is hidden."""
    offset = source_length - length
    queries = torch.arange(offset, source_length, device=like.device)[:, None]  # (L, 1)
    keys = torch.arange(source_length, device=like.device)[None, :]  # (1, S)
    blocked = keys > queries
    if window is not None:
        blocked = blocked | (queries - keys >= window)
    mask = blocked[None, None]  # (1, 1, L, S)
    if key_padding_mask is not None:
        mask = mask | key_padding_mask[:, None, None, :]
    if not bool(mask.any()):
        return None
    return AF.mask_to_bias(mask, like.dtype)


class GatedMLP(nn.Module):
    """SwiGLU: down(SiLU(gate(x)) * up(x))."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        width, inner, bias = config.hidden_size, config.intermediate_size, config.mlp_bias
        self.gate = nn.Linear(width, inner, bias=bias)
        self.up = nn.Linear(width, inner, bias=bias)
        self.down = nn.Linear(inner, width, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        hidden = F.silu(self.gate(x)) * self.up(x)  # (B, L, I)
        out: Tensor = self.down(hidden)
        return out


class GPT2MLP(nn.Module):
    """W_2 · act(W_1 · x), the activation config.json names (GPT-2's is tanh-GELU)."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.activation = config.activation
        self.expand = nn.Linear(config.hidden_size, config.intermediate_size)
        self.project = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.expand(x)  # (B, L, I)
        if self.activation == "relu":
            hidden = F.relu(hidden)
        else:
            exact = self.activation == "gelu"
            hidden = F.gelu(hidden, approximate="none" if exact else "tanh")
        out: Tensor = self.project(hidden)
        return out


def _norm(config: DecoderConfig) -> nn.Module:
    if config.rms_norm:
        return nn.RMSNorm(config.hidden_size, eps=config.norm_eps)
    return nn.LayerNorm(config.hidden_size, eps=config.norm_eps)


class DecoderLayer(nn.Module):
    def __init__(self, config: DecoderConfig, index: int) -> None:
        super().__init__()
        self.config, self.index = config, index
        self.attention_norm = _norm(config)
        self.attention = MultiHeadAttention(config.attention_config(index))
        self.mlp_norm = _norm(config)
        self.mlp: nn.Module = GatedMLP(config) if config.gated else GPT2MLP(config)

    def forward(
        self,
        x: Tensor,
        cache: KVCache | None,
        key_padding_mask: Tensor | None,
        *,
        need_weights: bool,
        trace: bool,
    ) -> tuple[Tensor, AttentionOutput]:
        """(B, L, E) -> (B, L, E); appends this layer's keys and values to `cache`."""
        attended = self.attend(self.attention_norm(x), cache, key_padding_mask, need_weights, trace)
        x = x + attended.output
        x = x + self.mlp(self.mlp_norm(x))
        return x, attended

    def attend(
        self,
        x: Tensor,
        cache: KVCache | None,
        key_padding_mask: Tensor | None,
        need_weights: bool,
        trace: bool,
    ) -> AttentionOutput:
        module, config = self.attention, self.attention.config
        q, k, v = module.project(x, x, x)  # (B, L, H·d), (B, L, H_kv·d) twice
        q = AF.split_heads(q, config.num_heads)  # (B, H, L, d)
        k = AF.split_heads(k, config.kv_heads)  # (B, H_kv, L, d)
        v = AF.split_heads(v, config.kv_heads)
        past = 0 if cache is None else cache.length_of(self.index)
        if config.positional_encoding == "rope":
            q = apply_rope(q, config.rope_base, offset=past)
            k = apply_rope(k, config.rope_base, offset=past)
        if cache is not None:
            k, v = cache.append(self.index, k, v)  # (B, H_kv, S, d)
        bias = decoder_bias(q.shape[2], k.shape[2], config.window, key_padding_mask, q)
        result: AttentionOutput = module.attend(
            q, k, v, bias, need_weights=need_weights, trace=trace
        )
        return result


class DecoderModel(nn.Module):
    """Token embeddings (and GPT-2's learned positions), the layers, the final norm, the head."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = (
            nn.Embedding(config.max_positions, config.hidden_size)
            if config.rope_theta is None
            else None
        )
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_layers))
        self.final_norm = _norm(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.token_embeddings.weight

    def forward(
        self,
        input_ids: Tensor,
        *,
        cache: KVCache | None = None,
        key_padding_mask: Tensor | None = None,
        output_attentions: bool | Collection[int] = False,
        trace_layers: Collection[int] = (),
    ) -> DecoderOutput:
        """(B, L) ids after `cache.length` positions already seen (0 without a cache).

        `key_padding_mask` (B, S) is True at padding, S counting the cached keys (right-padded
        batches: each sequence's results are its first positions). `output_attentions` keeps
        every layer's (B, H, L, S) weights, or those of the layers it names; `trace_layers`
        keeps their every step, plus ``inputs`` (the hidden state that entered the layer).
        """
        past = 0 if cache is None else cache.length
        self._check_inputs(input_ids, past, key_padding_mask, trace_layers)
        x = self.token_embeddings(input_ids)  # (B, L, E)
        if self.position_embeddings is not None:
            positions = torch.arange(past, past + input_ids.shape[1], device=input_ids.device)
            x = x + self.position_embeddings(positions)[None]
        hidden: list[Tensor] = [x]
        weighted = _chosen(output_attentions, self.config.num_layers)
        attentions: dict[int, Tensor] = {}
        traces: dict[int, dict[str, Tensor]] = {}
        for index, layer in enumerate(self.layers):
            checkpoint()  # a caller that gave up stops here, one layer at most after it did
            keep, trace = index in weighted, index in trace_layers
            x, attended = layer(x, cache, key_padding_mask, need_weights=keep, trace=trace)
            if keep and attended.weights is not None:
                attentions[index] = attended.weights
            if trace:
                traces[index] = {"inputs": hidden[-1], **attended.trace}
            hidden.append(x)
        normed = self.final_norm(x)
        hidden[-1] = normed  # as Hugging Face reports it: the last hidden state is normed
        logits = self.lm_head(normed)  # (B, L, V)
        return DecoderOutput(logits, tuple(hidden), attentions, traces)

    def _check_inputs(
        self,
        input_ids: Tensor,
        past: int,
        key_padding_mask: Tensor | None,
        trace_layers: Collection[int],
    ) -> None:
        config = self.config
        if input_ids.dim() != 2 or input_ids.shape[1] == 0:
            raise ShapeError(
                f"input_ids has shape {tuple(input_ids.shape)}; expected (batch, length >= 1)",
                field="input_ids",
            )
        if input_ids.dtype not in (torch.int32, torch.int64):
            raise InputError(
                f"input_ids must be integers, not {input_ids.dtype}", field="input_ids"
            )
        if bool(((input_ids < 0) | (input_ids >= config.vocab_size)).any()):
            raise InputError(
                f"input_ids holds values outside 0..{config.vocab_size - 1}", field="input_ids"
            )
        total = past + input_ids.shape[1]
        if total > config.max_positions:
            raise InputError(
                f"{total} positions exceed the model's {config.max_positions}", field="input_ids"
            )
        if key_padding_mask is not None and key_padding_mask.shape != (input_ids.shape[0], total):
            raise ShapeError(
                f"key_padding_mask has shape {tuple(key_padding_mask.shape)}; expected "
                f"({input_ids.shape[0]}, {total})",
                field="key_padding_mask",
            )
        unknown = sorted(set(trace_layers) - set(range(config.num_layers)))
        if unknown:
            raise InputError(
                f"trace_layers {unknown} do not exist; layers are 0..{config.num_layers - 1}",
                field="trace_layers",
            )


def _chosen(layers: bool | Collection[int], count: int) -> set[int]:
    if isinstance(layers, bool):
        return set(range(count)) if layers else set()
    return set(layers) & set(range(count))
