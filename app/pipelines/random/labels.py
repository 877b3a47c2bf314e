"""What each row and column of a result stands for: the token labels of queries and keys,
read off the request before any tensor is built (the limits are checked on their lengths)."""

from __future__ import annotations

from dataclasses import dataclass

from app.http.schemas import AttentionRequest
from app.pipelines.encoder.checks import check_rows_have_tokens
from app.pipelines.random.cost import Shape
from app.pipelines.random.tokenize import tokenize
from attention import AttentionConfig, ShapeError

Label = str | int
EXTRA_KEY_LABELS = ("<bias_k>", "<zero_attn>")


@dataclass
class Labels:
    """Token labels of queries and keys, one list per sequence, unpadded."""

    queries: list[list[Label]]
    keys: list[list[Label]]  # the sequence's own keys, before bias_k and the zero key

    @property
    def query_lengths(self) -> list[int]:
        return [len(tokens) for tokens in self.queries]

    @property
    def key_lengths(self) -> list[int]:
        return [len(tokens) for tokens in self.keys]


def request_labels(request: AttentionRequest) -> Labels:
    """Token labels, read off the request without building any tensor."""
    if request.text is not None:
        texts = [request.text] if isinstance(request.text, str) else request.text
        queries: list[list[Label]] = [list(tokenize(text)) for text in texts]
    elif request.sequences is not None:
        queries = [list(sequence) for sequence in request.sequences]
    else:
        queries = [_position_labels(len(rows)) for rows in request.embeddings or []]
    if request.key_sequences is not None:
        keys: list[list[Label]] = [list(sequence) for sequence in request.key_sequences]
    elif request.key_embeddings is not None:
        keys = [_position_labels(len(rows)) for rows in request.key_embeddings]
    else:
        keys = queries
    _check_labels(queries, keys, request)
    return Labels(queries, keys)


def request_shape(request: AttentionRequest, labels: Labels, config: AttentionConfig) -> Shape:
    return Shape(
        batch=len(labels.queries),
        query_length=max(labels.query_lengths),
        key_length=max(labels.key_lengths) + config.extra_keys,
    )


def _position_labels(length: int) -> list[Label]:
    return [f"[{position}]" for position in range(length)]


def _check_labels(
    queries: list[list[Label]], keys: list[list[Label]], request: AttentionRequest
) -> None:
    sources = ("text", "sequences", "embeddings")
    source = next(name for name in sources if getattr(request, name) is not None)
    check_rows_have_tokens(source, [len(tokens) for tokens in queries])
    key_source = "key_sequences" if request.key_sequences is not None else "key_embeddings"
    if keys is not queries:
        if len(keys) != len(queries):
            raise ShapeError(
                f"{key_source} has {len(keys)} sequences but there are {len(queries)} query "
                "sequences; give one key sequence per query sequence",
                field=key_source,
            )
        check_rows_have_tokens(key_source, [len(tokens) for tokens in keys])
