"""The random model's joinable form: requests that `attention.joint` computes in one pass with
numbers bitwise equal to each request's own (app/serving/batching.py gathers them).

Joined: self-attention over one sequence of tokens (`sequences` or `text`), no mask, no
`parameters`, no shaping of the weights, weights or steps asked for, on the CPU; the key is the
module (config and dtype), the sequence length and whether steps are traced. Everything else
runs alone: two or more sequences or padding (the joined products would round differently, see
`attention/joint.py`), the fused kernel's form (neither weights nor steps: its numbers are not
the weighted path's), cross-attention and given vectors (other inputs per request), a GPU (the
equality is shown on the CPU only; docs/performance.md, micro-batching).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import torch

from app.http.encoding import Body
from app.http.schemas import AttentionRequest
from app.pipelines.random.inputs import needs_weights
from app.pipelines.random.labels import Label, Labels
from app.serving.batching import Outcome
from attention import AttentionConfig, AttentionModel, AttentionOutput, Interrupted
from attention.joint import joint_self_attention
from attention.shaping import Shaping

Finish = Callable[[AttentionOutput, float], Body]  # one request's result -> its answer


@dataclass(frozen=True)
class RandomJoin:
    key: Hashable
    model: Callable[[], AttentionModel]
    queries: list[list[Label]]  # one sequence
    trace: bool
    finish: Finish  # cut and encode, as the request's own work does

    def run_together(
        self, members: Sequence[RandomJoin], wanted: Callable[[int], bool]
    ) -> list[Outcome]:
        return run_together(members, wanted)


def random_join(
    request: AttentionRequest,
    labels: Labels,
    config: AttentionConfig,
    dtype: torch.dtype,
    device: torch.device,
    shapings: list[Shaping] | None,
    model: Callable[[], AttentionModel],
    finish: Finish,
) -> RandomJoin | None:
    """The request's joinable form, or None when it must run alone."""
    trace = bool(request.output.step_names())
    if device.type != "cpu" or shapings is not None or len(labels.queries) != 1:
        return None
    if not (trace or needs_weights(request)) or has_own_inputs(request):
        return None
    key = (config, dtype, labels.query_lengths[0], trace)
    return RandomJoin(key, model, labels.queries, trace, finish)


def has_own_inputs(request: AttentionRequest) -> bool:
    """Inputs beyond the tokens: vectors, keys, masks or weights of the request's own."""
    own = (
        request.embeddings, request.key_sequences, request.key_embeddings,
        request.value_embeddings, request.key_padding_mask, request.attn_mask, request.parameters,
    )  # fmt: skip
    return any(value is not None for value in own)


def run_together(members: Sequence[RandomJoin], wanted: Callable[[int], bool]) -> list[Outcome]:
    """One pass for every member whose tokens embed; each member's answer as its own work
    would give it (an error of its own tokens or of its answer reaches it alone)."""
    model = members[0].model()
    device = model.tokens.ids.weight.device
    computing = time.perf_counter()
    outcomes: list[Outcome] = [None] * len(members)
    inputs: dict[int, torch.Tensor] = {}
    for index, member in enumerate(members):
        try:
            inputs[index] = model.embed_tokens(member.queries).to(device)
        except Interrupted:
            raise
        except Exception as error:
            outcomes[index] = error
    if not inputs:
        return outcomes
    results = joint_self_attention(model, list(inputs.values()), trace=members[0].trace)
    for index, result in zip(inputs, results, strict=True):
        if not wanted(index):
            continue
        try:
            outcomes[index] = members[index].finish(result, computing)
        except Interrupted:
            raise
        except Exception as error:
            outcomes[index] = error
    return outcomes
