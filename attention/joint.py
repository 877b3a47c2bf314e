"""Several callers' self-attention in one pass, each result bitwise what its own call gives.

Stacking sequences on the batch axis and running one `forward` is not exact: PyTorch's CPU
matrix product tiles its rows by the product's row count, so a row of the linear layers (rows =
B·L) can round differently in a stack than alone (measured on torch 2.13 CPU: float32 at 1-3
rows, float64 at any row count not a multiple of 4; docs/performance.md, micro-batching). Only
the steps that are per matrix or per row are joined here:

    per caller   embedding + position, the Q/K/V projection, heads, RoPE, extra keys  (as alone)
    joined       Q×Kᵀ, scaling, the configuration's own bias, softmax, weighted sum, concat
    per caller   the output projection, on the caller's own rows of the concatenation (as alone)

so every linear layer sees exactly the rows it sees alone, and the joined steps are batched
products and row-wise operations, whose entries do not depend on the batch around them. Callers
must share the model and the sequence length, carry no mask (a padding mask would change the
row counts and the softmax path) and send one sequence each: with two or more, a caller's own
call copies its keys into another memory layout before Q×Kᵀ (`functional.head_matmul`'s
reshape), a product the joined layout does not reproduce to the bit.
`tests/attention/test_joint.py` holds each result to `torch.equal` with the caller's own call.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from attention.errors import ShapeError
from attention.model import AttentionModel, Embedded
from attention.multi_head import AttentionOutput


def joint_self_attention(
    model: AttentionModel, token_embeddings: Sequence[Tensor], *, trace: bool
) -> list[AttentionOutput]:
    """`model(x, need_weights=True, trace=trace)` for each x (1, L, d_model), in one pass.

    Every x must hold one sequence of the same length L. The weighted path only: a caller that
    wants neither weights nor steps is answered by the fused kernel
    (`F.scaled_dot_product_attention`), whose numbers this pass would not reproduce.
    """
    shapes = {tuple(x.shape[:2]) for x in token_embeddings}
    if len(shapes) != 1 or next(iter(shapes))[0] != 1:
        raise ShapeError(
            f"joined callers must send one sequence each, all of one length; got "
            f"{sorted(shapes)} (batch, length)",
            field="token_embeddings",
        )
    layer = model.attention
    embedded = [model.embed(x) for x in token_embeddings]
    heads = [layer.heads(each.inputs, each.inputs, each.inputs) for each in embedded]
    q, k, v = (torch.cat(parts) for parts in zip(*heads, strict=True))  # (ΣB, H, L, d), …
    batch, _, length, _ = q.shape
    bias = layer.attention_bias(
        batch, length, length, key_padding_mask=None, attn_mask=None, like=q
    )
    # the trace keeps the concatenation, which each caller projects on its own rows
    joined = layer.attend(q, k, v, bias, need_weights=True, trace=True)
    results, first = [], 0
    for each in embedded:
        rows = slice(first, first + each.inputs.shape[0])
        first = rows.stop
        results.append(_own_rows(model, joined, rows, each, trace))
    return results


def _own_rows(
    model: AttentionModel, joined: AttentionOutput, rows: slice, embedded: Embedded, trace: bool
) -> AttentionOutput:
    layer = model.attention
    concat = joined.trace["concat"][rows]  # (B_i, L, H·d), contiguous: whole leading rows
    output = F.linear(concat, layer.out_proj.weight, layer.out_proj.bias)  # (B_i, L, E)
    assert joined.weights is not None
    assert joined.fully_masked is not None
    result = AttentionOutput(
        output=output, weights=joined.weights[rows], fully_masked=joined.fully_masked[rows]
    )
    if trace:
        steps = {name: tensor[rows] for name, tensor in joined.trace.items()}
        positional = embedded.positional.expand_as(embedded.inputs)
        result.trace = {
            **embedded._replace(positional=positional)._asdict(),
            **steps,
            "output": output,
        }
    return result
