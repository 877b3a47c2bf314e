"""What a decoder can take: text or words (no vectors, masks or weights), float32, the layers,
and the limits on tokens, batch, new tokens and the whole context."""

from __future__ import annotations

from app.http.schemas import AttentionRequest
from app.pipelines.cost import at_most
from app.pipelines.encoder.checks import check_pretrained_request
from app.pipelines.models import Decoder
from app.serving.settings import Settings
from attention import InputError
from attention.bert import TokenizedBatch


def check_decoder_request(request: AttentionRequest) -> None:
    """422 for what a decoder cannot take."""
    name = request.model
    check_pretrained_request(request, name)
    for option in ("analysis", "embedding"):
        if getattr(request.output, option):
            raise InputError(
                f"output.{option} is for encoders; model={name!r} is a decoder",
                field=f"output.{option}",
            )
    if request.output.shapes_attention():
        # refused rather than ignored: a decoder's answer is not shaped yet (docs/models.md)
        raise InputError(
            f"output.heads, queries, top_k and pool are not supported with model={name!r} (a "
            "decoder) yet; ask for layers, or attention 'average'",
            field="output",
        )
    if request.config.dtype != "float32":
        raise InputError(
            f"config.dtype={request.config.dtype!r}: decoders run in float32", field="config.dtype"
        )
    if (
        request.generate is not None
        and not isinstance(request.text, str)
        and (request.sequences is None or len(request.sequences) != 1)
    ):
        count = len(request.text or request.sequences or [])
        raise InputError(f"generate continues one text; got {count} sequences", field="generate")


def tokenize_request(request: AttentionRequest, decoder: Decoder) -> TokenizedBatch:
    tokenizer = decoder.tokenizer
    if request.sequences is not None:
        return tokenizer.encode_words([[str(t) for t in seq] for seq in request.sequences])
    text = request.text
    return tokenizer.encode([text] if isinstance(text, str) else list(text or []))


def check_decoder_limits(
    request: AttentionRequest, batch: TokenizedBatch, decoder: Decoder, settings: Settings
) -> None:
    lengths = batch.lengths
    at_most("batch size", len(lengths), settings.max_batch, "max_batch")
    at_most("tokens per sequence", max(lengths), settings.max_tokens, "max_tokens")
    if request.generate is None:
        return
    new = request.generate.max_new_tokens
    at_most("generate.max_new_tokens", new, settings.max_new_tokens, "max_new_tokens")
    at_most(
        "the context (prompt tokens + generate.max_new_tokens)",
        lengths[0] + new, settings.max_context_tokens, "max_context_tokens",
    )  # fmt: skip
    if lengths[0] >= decoder.info.config.max_positions:
        raise InputError(
            f"the prompt has {lengths[0]} tokens: the model's {decoder.info.config.max_positions} "
            "positions leave no room to generate",
            field="text",
        )
