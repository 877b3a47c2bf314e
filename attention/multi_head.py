"""MultiHeadAttention: the projections, the head split and merge, and the trace of every step.

Parameter names and layouts are those of ``torch.nn.MultiheadAttention``, so its state dict loads
here unchanged and ours loads there (see ``attention.weights`` for the checked versions).
Grouped-query attention generalises them: K and V project to ``num_kv_heads · head_dim``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attention import functional as AF
from attention.config import AttentionConfig
from attention.inputs import check_inputs
from attention.interrupt import checkpoint
from attention.positional import alibi_bias, apply_rope
from attention.shaping import query_block_rows

# receives the weights (B, H, rows, S) of queries first..first+rows, then lets them go
WeightsSink = Callable[[Tensor, int], None]


@dataclass
class AttentionOutput:
    """What one forward call returns; `weights` and `trace` are filled only when asked for."""

    output: Tensor  # (B, L, d_model)
    weights: Tensor | None = None  # (B, H, L, S) per head, S counting bias_k and the zero key
    fully_masked: Tensor | None = None  # (B, H, L) bool: queries that could attend to no key
    trace: dict[str, Tensor] = field(default_factory=dict)  # step name -> batched tensor


@dataclass
class AttendedHeads:
    """Steps 4-8: the heads' outputs concatenated, before the output projection (step 9).
    Kept apart so that a caller may project many calls' rows at once (attention/bert/joint.py)."""

    concat: Tensor  # (B, L, H·d)
    weights: Tensor | None = None  # (B, H, L, S), on the weighted path
    fully_masked: Tensor | None = None  # (B, H, L), on the weighted path
    steps: dict[str, Tensor] = field(default_factory=dict)  # the trace from "q" to "concat"


class MultiHeadAttention(nn.Module):
    """Multi-head attention whose every intermediate step can be returned.

    Three ways to call it, from most to least observable: ``trace=True`` keeps every step,
    ``need_weights=True`` keeps only the per-head weights, and otherwise the head outputs come
    from ``F.scaled_dot_product_attention`` (the fast path).
    """

    in_proj_weight: nn.Parameter | None
    q_proj_weight: nn.Parameter | None
    k_proj_weight: nn.Parameter | None
    v_proj_weight: nn.Parameter | None
    in_proj_bias: nn.Parameter | None
    bias_k: nn.Parameter | None
    bias_v: nn.Parameter | None

    def __init__(self, config: AttentionConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        # causal, window or ALiBi: a bias on the scores even when no mask is given
        self._biases_scores = (
            config.causal or config.window is not None or config.positional_encoding == "alibi"
        )
        self._register_projections(config)
        self.out_proj = nn.Linear(config.query_dim, config.d_model, bias=config.bias)
        self.reset_parameters(generator)

    def _register_projections(self, config: AttentionConfig) -> None:
        d_model, kv_dim, query_dim = config.d_model, config.kv_dim, config.query_dim
        packed = config.packed_projection

        def weight(rows: int, columns: int, present: bool) -> nn.Parameter | None:
            return nn.Parameter(torch.empty(rows, columns)) if present else None

        self.in_proj_weight = weight(query_dim + 2 * kv_dim, d_model, packed)
        self.q_proj_weight = weight(query_dim, d_model, not packed)
        self.k_proj_weight = weight(kv_dim, config.key_dim, not packed)
        self.v_proj_weight = weight(kv_dim, config.value_dim, not packed)
        biases = query_dim + 2 * kv_dim
        self.in_proj_bias = nn.Parameter(torch.empty(biases)) if config.bias else None
        self.bias_k = nn.Parameter(torch.empty(1, 1, kv_dim)) if config.add_bias_kv else None
        self.bias_v = nn.Parameter(torch.empty(1, 1, kv_dim)) if config.add_bias_kv else None

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyTorch's own scheme for nn.MultiheadAttention, drawn from `generator`."""
        for weight in (
            self.in_proj_weight,
            self.q_proj_weight,
            self.k_proj_weight,
            self.v_proj_weight,
        ):
            if weight is not None:
                nn.init.xavier_uniform_(weight, generator=generator)
        nn.init.kaiming_uniform_(self.out_proj.weight, a=math.sqrt(5), generator=generator)
        for bias in (self.in_proj_bias, self.out_proj.bias):
            if bias is not None:
                nn.init.zeros_(bias)
        for extra in (self.bias_k, self.bias_v):
            if extra is not None:
                nn.init.xavier_normal_(extra, generator=generator)

    # -- steps 2-3: the linear layers -------------------------------------------------------

    def projection_weights(self) -> tuple[Tensor, Tensor, Tensor]:
        """The Q, K and V weight matrices, whichever layout holds them."""
        if self.in_proj_weight is None:
            assert self.q_proj_weight is not None
            assert self.k_proj_weight is not None
            assert self.v_proj_weight is not None
            return self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return self._split_qkv(self.in_proj_weight)

    def projection_biases(self) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        if self.in_proj_bias is None:
            return None, None, None
        return self._split_qkv(self.in_proj_bias)

    def _split_qkv(self, packed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        sizes = [self.config.query_dim, self.config.kv_dim, self.config.kv_dim]
        q, k, v = torch.split(packed, sizes)
        return q, k, v

    def project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The linear layers: (B, L, E), (B, S, kdim), (B, S, vdim) -> Q, K, V (B, ·, H·d)."""
        if query is key and key is value:
            return self.split_projection(self.self_projection(query))
        (w_q, w_k, w_v), (b_q, b_k, b_v) = self.projection_weights(), self.projection_biases()
        return F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)

    def self_projection(self, x: Tensor) -> tuple[Tensor, ...]:
        """Self-attention's linear layers on (…, E): the packed Q|K|V product (one tensor), or Q,
        K and V (three); `split_projection` turns either into Q, K, V."""
        if self.in_proj_weight is not None:
            # one matrix product instead of three, as PyTorch does
            return (F.linear(x, self.in_proj_weight, self.in_proj_bias),)
        (w_q, w_k, w_v), (b_q, b_k, b_v) = self.projection_weights(), self.projection_biases()
        return F.linear(x, w_q, b_q), F.linear(x, w_k, b_k), F.linear(x, w_v, b_v)

    def split_projection(self, parts: tuple[Tensor, ...]) -> tuple[Tensor, Tensor, Tensor]:
        if len(parts) == 1:
            return self._split_last(parts[0])
        q, k, v = parts
        return q, k, v

    def _split_last(self, packed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        sizes = [self.config.query_dim, self.config.kv_dim, self.config.kv_dim]
        q, k, v = packed.split_with_sizes(sizes, dim=-1)  # torch.split, minus its Python layer
        return q, k, v

    def append_extra_keys(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """add_bias_kv, then add_zero_attn, on heads-split (B, H_kv, S, d) keys and values."""
        batch, kv_heads, _, head_dim = k.shape
        if self.bias_k is not None and self.bias_v is not None:
            bias_k = self.bias_k.view(1, kv_heads, 1, head_dim).expand(batch, -1, -1, -1)
            bias_v = self.bias_v.view(1, kv_heads, 1, head_dim).expand(batch, -1, -1, -1)
            k, v = torch.cat([k, bias_k], dim=2), torch.cat([v, bias_v], dim=2)
        if self.config.add_zero_attn:
            zeros = k.new_zeros(batch, kv_heads, 1, head_dim)
            k, v = torch.cat([k, zeros], dim=2), torch.cat([v, zeros], dim=2)
        return k, v

    # -- step 5b: masks and biases ------------------------------------------------------------

    def attention_bias(
        self,
        batch: int,
        length: int,
        source_length: int,
        *,
        key_padding_mask: Tensor | None,
        attn_mask: Tensor | None,
        like: Tensor,
    ) -> Tensor | None:
        """One additive bias (B|1, H|1, L, S + extra keys), -inf where a key may not be seen."""
        config, device, dtype = self.config, like.device, like.dtype
        if key_padding_mask is None and attn_mask is None and not self._biases_scores:
            return None
        blocked = self._structural_mask(length, source_length, device)
        bias = None if blocked is None else AF.mask_to_bias(blocked, dtype)
        if attn_mask is not None:
            mask = AF.mask_to_bias(attn_mask, dtype)
            if mask.dim() == 3:  # PyTorch's (B·H, L, S) layout
                mask = mask.view(batch, config.num_heads, length, source_length)
            bias = mask if bias is None else bias + mask
        if config.positional_encoding == "alibi":
            alibi = alibi_bias(config.num_heads, length, source_length, device, dtype)
            bias = alibi if bias is None else bias + alibi
        if key_padding_mask is not None:
            padding = AF.mask_to_bias(key_padding_mask, dtype).view(batch, 1, 1, source_length)
            bias = padding if bias is None else bias + padding
        if bias is None or not config.extra_keys:
            return bias
        # the appended keys are always visible, as in PyTorch's F.pad of both masks
        return F.pad(bias, (0, config.extra_keys))

    def _structural_mask(
        self, length: int, source_length: int, device: torch.device
    ) -> Tensor | None:
        config = self.config
        blocked = AF.causal_mask(length, source_length, device) if config.causal else None
        # no query is `max(L, S)` or more positions from any key: such a window hides nothing
        if config.window is not None and config.window < max(length, source_length):
            window = AF.window_mask(length, source_length, config.window, device)
            blocked = window if blocked is None else blocked | window
        return blocked

    # -- the forward pass ---------------------------------------------------------------------

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        need_weights: bool = True,
        trace: bool = False,
        weights_sink: WeightsSink | None = None,
    ) -> AttentionOutput:
        """Batch-first inputs: query (B, L, E), key (B, S, kdim), value (B, S, vdim).

        Without `key` and `value` this is self-attention on `query`. With `weights_sink` (and no
        trace) the weights are computed per block of queries and handed to it, never whole.
        """
        key = query if key is None else key
        value = key if value is None else value
        check_inputs(self.config, query, key, value, key_padding_mask, attn_mask)
        q, k, v = self.heads(query, key, value)
        blocked = need_weights or not self._only_causal(key_padding_mask, attn_mask)
        if weights_sink is not None and not trace and blocked:
            bias = self._bias(q, k, key_padding_mask, attn_mask)
            return self._blocked_forward(q, k, v, bias, weights_sink)
        attended = self.attended_heads(
            q, k, v, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
            need_weights=need_weights, trace=trace,
        )  # fmt: skip
        return self.project_output(attended)

    def heads(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Steps 2-3 and the keys' extras: Q (B, H, L, d) and K, V (B, H_kv, S + extra, d),
        projected, split into heads, rotated (RoPE) and with bias_k and the zero key appended."""
        return self.positioned_heads(*self.project(query, key, value))

    def positioned_heads(self, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`heads` after the linear layers: projected (B, L, H·d), (B, S, H_kv·d) twice in."""
        config = self.config
        q = AF.split_heads(q, config.num_heads)  # (B, H, L, d)
        k = AF.split_heads(k, config.kv_heads)  # (B, H_kv, S, d)
        v = AF.split_heads(v, config.kv_heads)  # (B, H_kv, S, d)
        if config.positional_encoding == "rope":
            q, k = apply_rope(q, config.rope_base), apply_rope(k, config.rope_base)
        k, v = self.append_extra_keys(k, v)  # (B, H_kv, S + extra, d)
        return q, k, v

    def attended_heads(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        *,
        key_padding_mask: Tensor | None,
        attn_mask: Tensor | None,
        need_weights: bool,
        trace: bool,
    ) -> AttendedHeads:
        """Steps 4-8 on `heads`' Q, K, V, under the masks, by the path `forward` takes (the
        fused kernel, or the weighted path when weights or steps are asked for)."""
        if not (need_weights or trace) and self._only_causal(key_padding_mask, attn_mask):
            # a bare causal mask goes to the fused kernel as is_causal: no bias tensor at all
            return self._fast_heads(q, k, v, None, is_causal=True)
        bias = self._bias(q, k, key_padding_mask, attn_mask)
        return self._heads_under(q, k, v, bias, need_weights=need_weights, trace=trace)

    def _bias(
        self, q: Tensor, k: Tensor, key_padding_mask: Tensor | None, attn_mask: Tensor | None
    ) -> Tensor | None:
        batch, _, length, _ = q.shape
        source_length = k.shape[2] - self.config.extra_keys  # the keys' own, before the extras
        return self.attention_bias(
            batch, length, source_length,
            key_padding_mask=key_padding_mask, attn_mask=attn_mask, like=q,
        )  # fmt: skip

    def attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        bias: Tensor | None,
        *,
        need_weights: bool,
        trace: bool,
    ) -> AttentionOutput:
        """Steps 4-9 on heads-split, already positioned Q (B, H, L, d) and K, V (B, H_kv, S, d)
        under one additive `bias` (B|1, H|1, L, S): for callers that keep their own keys, such
        as a decoder's cache, and so build the projections and the bias themselves."""
        attended = self._heads_under(q, k, v, bias, need_weights=need_weights, trace=trace)
        return self.project_output(attended)

    def _heads_under(
        self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, *, need_weights: bool,
        trace: bool,
    ) -> AttendedHeads:  # fmt: skip
        if not (need_weights or trace):
            return self._fast_heads(q, k, v, bias)
        return self._weighted_heads(q, k, v, bias, keep_trace=trace)

    def project_output(self, attended: AttendedHeads) -> AttentionOutput:
        """Step 9, the output projection, on the concatenated heads (any leading axes)."""
        output = F.linear(attended.concat, self.out_proj.weight, self.out_proj.bias)  # (…, E)
        trace = {**attended.steps, "output": output} if attended.steps else {}
        return AttentionOutput(output, attended.weights, attended.fully_masked, trace)

    def _only_causal(self, key_padding_mask: Tensor | None, attn_mask: Tensor | None) -> bool:
        config = self.config
        return (
            config.causal
            and config.window is None
            and config.positional_encoding != "alibi"
            and not config.extra_keys
            and key_padding_mask is None
            and attn_mask is None
        )

    def _fast_heads(
        self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, *, is_causal: bool = False
    ) -> AttendedHeads:
        heads = AF.fast_attention(
            q, k, v,
            scale=self.config.resolved_scale,
            bias=bias,
            dropout=self.config.dropout if self.training else 0.0,
            is_causal=is_causal,
        )  # fmt: skip
        return AttendedHeads(AF.merge_heads(heads))

    def _blocked_forward(
        self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, sink: WeightsSink
    ) -> AttentionOutput:
        """Steps 4-7 per block of queries: the pass holds (B, H, rows, S) matrices instead of
        (B, H, L, S), and each block's weights go to `sink` (attention/shaping.py). Inference
        only: no dropout."""
        batch, heads, length, _ = q.shape
        rows = query_block_rows(batch, heads, k.shape[2])
        outputs, fully_masked = [], []
        for first in range(0, length, rows):
            checkpoint()
            last = min(first + rows, length)
            block_bias = bias
            if bias is not None and bias.shape[-2] != 1:  # (…, 1, S) padding serves every row
                block_bias = bias[..., first:last, :]
            scores = AF.attention_scores(q[:, :, first:last], k).mul_(self.config.resolved_scale)
            masked = AF.apply_bias(scores, block_bias)
            if block_bias is None:
                weights = torch.softmax(masked, dim=-1)
                masked_rows = weights.new_zeros(weights.shape[:-1], dtype=torch.bool)
            else:
                weights, masked_rows = AF.masked_softmax(masked)
            sink(weights, first)
            outputs.append(AF.weighted_sum(weights, v))  # (B, H, rows, d)
            fully_masked.append(masked_rows)
        concat = AF.merge_heads(torch.cat(outputs, dim=2))
        return self.project_output(AttendedHeads(concat, fully_masked=torch.cat(fully_masked, 2)))

    def _weighted_heads(
        self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, *, keep_trace: bool
    ) -> AttendedHeads:
        checkpoint()  # each (B, H, L, S) step can take seconds: a caller that gave up stops here
        scores = AF.attention_scores(q, k)  # (B, H, L, S)
        scale = self.config.resolved_scale
        # without a trace the unscaled scores are never seen: scale them where they lie (the
        # same products, one (B, H, L, S) allocation fewer)
        scaled = AF.scale_scores(scores, scale) if keep_trace else scores.mul_(scale)
        masked = AF.apply_bias(scaled, bias)
        checkpoint()
        if bias is None:  # no -inf anywhere: no query can be fully masked
            weights = torch.softmax(masked, dim=-1)  # (B, H, L, S)
            fully_masked = weights.new_zeros(weights.shape[:-1], dtype=torch.bool)  # (B, H, L)
        else:
            weights, fully_masked = AF.masked_softmax(masked)  # (B, H, L, S), (B, H, L)
        dropped = weights
        if self.training and self.config.dropout > 0:
            dropped = F.dropout(weights, self.config.dropout, training=True)
        checkpoint()
        heads = AF.weighted_sum(dropped, v)  # (B, H, L, d)
        concat = AF.merge_heads(heads)  # (B, L, H·d)
        if not keep_trace:
            return AttendedHeads(concat, weights, fully_masked)
        steps = {
            "q": q, "k": k, "v": v, "scores": scores, "scaled_scores": scaled,
            "masked_scores": masked, "attention": weights, "head_outputs": heads,
            "concat": concat,
        }  # fmt: skip
        return AttendedHeads(concat, weights, fully_masked, steps)
