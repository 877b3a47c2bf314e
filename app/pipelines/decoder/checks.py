"""What a decoder can take: text or words (no vectors, masks or weights), float32, the layers,
and the limits on tokens, batch, new tokens and the whole context."""

from __future__ import annotations

from app.http.schemas import AttentionRequest
from app.pipelines.cost import at_most
from app.pipelines.encoder.checks import check_batch_sizes, check_pretrained_request
from app.pipelines.families import Decoder
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


def check_decoder_limits(
    request: AttentionRequest, batch: TokenizedBatch, decoder: Decoder, settings: Settings
) -> None:
    check_batch_sizes(request, batch, settings)
    if request.generate is None:
        return
    prompt = batch.lengths[0]  # generate continues one text
    new = request.generate.max_new_tokens
    at_most("generate.max_new_tokens", new, settings.max_new_tokens, "max_new_tokens")
    at_most(
        "the context (prompt tokens + generate.max_new_tokens)",
        prompt + new, settings.max_context_tokens, "max_context_tokens",
    )  # fmt: skip
    if prompt >= decoder.info.config.max_positions:
        raise InputError(
            f"the prompt has {prompt} tokens: the model's {decoder.info.config.max_positions} "
            "positions leave no room to generate",
            field="text",
        )
