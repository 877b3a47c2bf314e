"""What a pretrained model can take: the inputs, the layers, the tokens and their sizes."""

from __future__ import annotations

import asyncio

from app.http.schemas import AttentionRequest
from app.pipelines.cost import Estimate, at_most, check_estimate
from app.serving.settings import Settings
from attention import STEPS, InputError
from attention.bert import TokenizedBatch, WordPieceTokenizer

UNSUPPORTED_INPUTS = (
    "embeddings", "key_sequences", "key_embeddings", "value_embeddings", "key_padding_mask",
    "attn_mask", "parameters",
)  # fmt: skip
# Up to this many characters a request is tokenized on the event loop (about 0.3 ms): a hop to a
# thread and back costs the loop more than that (handing the GIL over and getting it back, 1-2 ms
# under load, measured by cProfile of a 10-word request), longer ones go to a thread
INLINE_TOKENIZE_CHARS = 2_048
# every step from the layer's input on: token embedding and position happen once, before layer 0
TRACED_STEPS = STEPS[STEPS.index("inputs") :]


def check_pretrained_request(request: AttentionRequest, name: str) -> None:
    """422 for the inputs a fixed, pretrained model cannot take."""
    for field in UNSUPPORTED_INPUTS:
        if getattr(request, field) is not None:
            raise InputError(f"{field} is not supported with model={name!r}", field=field)
    fixed = sorted(request.config.model_fields_set - {"dtype"})
    if fixed:
        raise InputError(
            f"model={name!r} has a fixed configuration (see GET /models); of config only dtype "
            f"may be set, not {', '.join(fixed)}",
            field="config",
        )
    if request.sequences is not None and not all(
        isinstance(token, str) for sequence in request.sequences for token in sequence
    ):
        raise InputError(
            f"model={name!r} takes words: sequences of strings, or text", field="sequences"
        )
    unknown = [step for step in request.output.step_names() if step not in TRACED_STEPS]
    if request.output.steps != "all" and unknown:
        raise InputError(
            f"steps {unknown} are not traced for model={name!r}; available: {list(TRACED_STEPS)}",
            field="output.steps",
        )


def resolve_layers(request: AttentionRequest, num_layers: int) -> list[int]:
    if request.layers == "all":
        return list(range(num_layers))
    if not request.layers:
        raise InputError("layers must name at least one layer, or be 'all'", field="layers")
    for layer in request.layers:
        if not 0 <= layer < num_layers:
            raise InputError(
                f"layer {layer} does not exist: the model has layers 0..{num_layers - 1}",
                field="layers",
            )
    return list(dict.fromkeys(request.layers))


def tokenize_request(
    request: AttentionRequest, tokenizer: WordPieceTokenizer, *, may_truncate: bool = False
) -> TokenizedBatch:
    """The request's words or text as the folder's tokenizer splits them (every family); cut to
    the model's length when the request asks for `truncate` and the family can (`may_truncate`)."""
    if request.truncate and not may_truncate:
        raise InputError(
            f"truncate is for encoder models; model={request.model!r} refuses a text longer "
            "than it takes instead of cutting it",
            field="truncate",
        )
    cut = request.truncate
    if request.sequences is not None:
        words = [[str(token) for token in sequence] for sequence in request.sequences]
        return tokenizer.encode_words(words, truncate=cut, may_truncate=may_truncate)
    texts = [request.text] if isinstance(request.text, str) else list(request.text or [])
    return tokenizer.encode(texts, truncate=cut, may_truncate=may_truncate)


async def tokenized(
    request: AttentionRequest, tokenizer: WordPieceTokenizer, *, may_truncate: bool = False
) -> TokenizedBatch:
    """`tokenize_request`, off the event loop unless the input is short, so the probes and
    other requests go on while a long text is tokenized."""
    if input_characters(request) <= INLINE_TOKENIZE_CHARS:
        return tokenize_request(request, tokenizer, may_truncate=may_truncate)
    return await asyncio.to_thread(tokenize_request, request, tokenizer, may_truncate=may_truncate)


def input_characters(request: AttentionRequest) -> int:
    """The characters of the request's text or words (for a list of words, their lengths)."""
    if request.sequences is not None:
        return sum(len(str(token)) for sequence in request.sequences for token in sequence)
    texts = [request.text] if isinstance(request.text, str) else list(request.text or [])
    return sum(len(text) for text in texts)


def truncation_note(batch: TokenizedBatch, row: int) -> dict[str, int] | None:
    """results[i].truncated: sequence `row`'s length before and after the cut, or None if uncut."""
    kept = batch.lengths[row]
    tokens = batch.original_lengths[row] if batch.original_lengths else kept
    return {"tokens": tokens, "kept": kept} if tokens > kept else None


def check_rows_have_tokens(source: str, lengths: list[int]) -> None:
    """422 for no sequence at all or a sequence of no tokens (an empty or whitespace-only text
    on a tokenizer that adds no special tokens), naming the request's field and row."""
    if not lengths:
        raise InputError(f"{source} is empty: send at least one sequence", field=source)
    for row, length in enumerate(lengths):
        if length == 0:
            raise InputError(f"{source}[{row}] has no tokens", field=f"{source}.{row}")


def check_batch_sizes(request: AttentionRequest, batch: TokenizedBatch, settings: Settings) -> None:
    lengths = batch.lengths
    check_rows_have_tokens("sequences" if request.sequences is not None else "text", lengths)
    at_most("batch size", len(lengths), settings.max_batch, "max_batch")
    at_most("tokens per sequence", max(lengths), settings.max_tokens, "max_tokens")


def check_pretrained_limits(
    request: AttentionRequest, batch: TokenizedBatch, estimate: Estimate, settings: Settings
) -> None:
    check_batch_sizes(request, batch, settings)
    check_estimate(
        estimate,
        settings,
        "ask for output.pool or output.top_k, fewer layers or steps, or attention 'none'",
    )
