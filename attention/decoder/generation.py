"""Generation with a KV cache: greedy or sampled, each new token with its log-probability and
the attention that chose it.

A new token's attention is the row of the query that predicted it (the last position of the
step that produced its logits) over the whole context before it: per layer, (H, S) with S the
prompt plus the tokens generated before it. Greedy decoding is argmax at every step (the same
token for token as transformers' ``generate(do_sample=False)``); sampling applies temperature,
then top-k, then top-p (nucleus) in that order, as transformers does, and draws from a private
generator seeded with `seed`: the same request gives the same tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from attention.decoder.model import DecoderModel, DecoderOutput, KVCache
from attention.errors import ConfigError

StopReason = Literal["length", "eos", "stop", "context"]


@dataclass(frozen=True)
class Sampling:
    """How tokens are chosen; temperature 0 is greedy (top_k, top_p and seed then unused)."""

    max_new_tokens: int = 16
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0
    stop: tuple[str, ...] = ()  # stop once the generated text contains one of these

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, bool) or self.max_new_tokens < 1:
            raise ConfigError(
                f"max_new_tokens={self.max_new_tokens} must be >= 1", field="max_new_tokens"
            )
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ConfigError(
                f"temperature={self.temperature} must be a finite number >= 0",
                field="temperature",
            )
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k={self.top_k} must be >= 1", field="top_k")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p={self.top_p} must be in (0, 1]", field="top_p")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Generation:
    """What `generate` returns: the new tokens and, per token, what went into choosing it."""

    prompt: DecoderOutput  # the prompt's pass: its logits, hidden states, attentions, traces
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)  # log p(token | context), temperature 1
    attentions: list[dict[int, Tensor]] = field(default_factory=list)  # per token: layer -> (H, S)
    stop_reason: StopReason = "length"


@torch.inference_mode()
def generate(
    model: DecoderModel,
    prompt_ids: Sequence[int],
    sampling: Sampling,
    *,
    eos_token_ids: Collection[int] = (),
    decode: Callable[[list[int]], str] | None = None,
    attention_layers: bool | Collection[int] = True,
    trace_layers: Collection[int] = (),
) -> Generation:
    """Extend `prompt_ids` by up to `sampling.max_new_tokens` tokens.

    Stops early at an id of `eos_token_ids` (kept as the last token), once ``decode(new ids)``
    contains a string of `sampling.stop`, or when the model's positions are all used.
    """
    if sampling.stop and decode is None:
        raise ConfigError("stop strings need a decode function", field="stop")
    device = model.token_embeddings.weight.device
    generator = torch.Generator(device=device).manual_seed(sampling.seed)
    cache = KVCache()
    ids = torch.tensor([list(prompt_ids)], dtype=torch.int64, device=device)
    output = model(ids, cache=cache, output_attentions=attention_layers, trace_layers=trace_layers)
    result = Generation(prompt=output)
    while True:
        logits = output.logits[0, -1].float()  # (V,)
        token = _choose(logits, sampling, generator)
        result.token_ids.append(token)
        result.logprobs.append(float(torch.log_softmax(logits, dim=-1)[token]))
        result.attentions.append({layer: w[0, :, -1] for layer, w in output.attentions.items()})
        reason = _stop_reason(
            result.token_ids, cache.length, model, sampling, eos_token_ids, decode
        )
        if reason is not None:
            result.stop_reason = reason
            return result
        step = torch.tensor([[token]], dtype=torch.int64, device=device)
        output = model(step, cache=cache, output_attentions=attention_layers)


def _stop_reason(
    tokens: list[int],
    seen: int,
    model: DecoderModel,
    sampling: Sampling,
    eos_token_ids: Collection[int],
    decode: Callable[[list[int]], str] | None,
) -> StopReason | None:
    if tokens[-1] in eos_token_ids:
        return "eos"
    if sampling.stop and decode is not None:
        text = decode(tokens)
        if any(stop in text for stop in sampling.stop):
            return "stop"
    if len(tokens) >= sampling.max_new_tokens:
        return "length"
    if seen >= model.config.max_positions:
        return "context"  # feeding the new token would need a position the model does not have
    return None


def _choose(logits: Tensor, sampling: Sampling, generator: torch.Generator) -> int:
    if sampling.greedy:
        return int(torch.argmax(logits))
    probabilities = torch.softmax(filtered_logits(logits, sampling), dim=-1)
    return int(torch.multinomial(probabilities, 1, generator=generator))


def filtered_logits(logits: Tensor, sampling: Sampling) -> Tensor:
    """(V,) logits / temperature, -inf outside the top k and outside the nucleus top p: the
    smallest set of most likely tokens whose probability reaches top_p (at least one)."""
    scaled = logits / sampling.temperature
    if sampling.top_k is not None and sampling.top_k < scaled.numel():
        kth = torch.topk(scaled, sampling.top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    if sampling.top_p is not None and sampling.top_p < 1:
        ordered, order = torch.sort(scaled, descending=True)
        cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
        outside = cumulative - torch.softmax(ordered, dim=-1) >= sampling.top_p  # before it: full
        scaled = scaled.masked_fill(outside.scatter(0, order, outside), float("-inf"))
    return scaled
