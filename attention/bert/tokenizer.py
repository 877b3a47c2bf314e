"""WordPieceTokenizer: a BERT folder's ``tokenizer.json`` read through the ``tokenizers`` library.

Batches are padded on the right, so a sequence's real tokens are the first ``lengths[i]``
positions; everything per sequence (tokens, word ids, offsets) is kept unpadded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from attention.errors import InputError
from attention.folders import files
from attention.folders.errors import ModelDependencyError

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

MAX_TOKENIZER_BYTES = 64 * files.MiB  # large multilingual tokenizer.json files are ~20 MiB
WordId = int | None  # None marks a special token such as [CLS], [SEP]
Offset = tuple[int, int]  # characters [start, end) of the text (of the word, for word input)


@dataclass(frozen=True)
class TokenizedBatch:
    """Model inputs for B sequences padded to L tokens, and what each token stands for."""

    input_ids: Tensor  # (B, L) int64, pad_token_id after each sequence
    token_type_ids: Tensor  # (B, L) int64
    attention_mask: Tensor  # (B, L) bool, True = a real token (HuggingFace polarity)
    tokens: tuple[tuple[str, ...], ...]  # B × n_i WordPieces, unpadded
    word_ids: tuple[tuple[WordId, ...], ...]  # B × n_i: the word each token belongs to
    offsets: tuple[tuple[Offset, ...], ...]  # B × n_i
    inputs: tuple[str | tuple[str, ...], ...]  # what was tokenized: a text or a list of words
    # B: each sequence's length before truncation (special tokens included); () when not truncating
    original_lengths: tuple[int, ...] = ()

    @property
    def lengths(self) -> list[int]:
        return [len(tokens) for tokens in self.tokens]

    @property
    def key_padding_mask(self) -> Tensor:
        """(B, L) bool, True = padding: the polarity of ``torch.nn.MultiheadAttention``."""
        return ~self.attention_mask

    def to(self, device: torch.device | str) -> TokenizedBatch:
        return replace(
            self,
            input_ids=self.input_ids.to(device),
            token_type_ids=self.token_type_ids.to(device),
            attention_mask=self.attention_mask.to(device),
        )

    def word_groups(self, index: int) -> list[list[int]]:
        """Sequence `index`'s token positions grouped by word (see `word_groups`)."""
        return word_groups(self.word_ids[index])

    def group_labels(self, index: int) -> list[str]:
        """A label per word group: the word as written, or the special token itself."""
        source, tokens = self.inputs[index], self.tokens[index]
        labels = []
        for group in self.word_groups(index):
            word = self.word_ids[index][group[0]]
            if word is None:
                labels.append(tokens[group[0]])
            elif isinstance(source, str):
                start, end = self.offsets[index][group[0]][0], self.offsets[index][group[-1]][1]
                labels.append(source[start:end])
            else:
                labels.append(source[word])
        return labels


def word_groups(word_ids: Sequence[WordId]) -> list[list[int]]:
    """Token positions grouped into words, in order; each special token is a group of its own.

    ``[None, 0, 1, 1, 1, 2, None]`` (``[CLS] the em ##bed ##ding . [SEP]``) gives
    ``[[0], [1], [2, 3, 4], [5], [6]]``: a partition of the positions.
    """
    groups: list[list[int]] = []
    previous: WordId = None
    for position, word in enumerate(word_ids):
        if word is not None and word == previous:
            groups[-1].append(position)
        else:
            groups.append([position])
        previous = word
    return groups


class WordPieceTokenizer:
    """The folder's tokenizer with its own padding and truncation settings switched off.

    Sequences longer than `max_length` tokens (special tokens included) raise an InputError,
    or are cut to `max_length` with ``truncate=True``.
    """

    def __init__(self, tokenizer: Tokenizer, *, max_length: int, pad_token_id: int = 0) -> None:
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length)  # the overflow tells us what was cut
        self._tokenizer = tokenizer
        self.max_length = max_length
        self.pad_token_id = pad_token_id

    @classmethod
    def from_file(cls, path: Path, *, max_length: int, pad_token_id: int = 0) -> WordPieceTokenizer:
        """Read `path` (a model folder's tokenizer.json); every failure is a ModelFileError
        naming the file by its name, never by its absolute path."""
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ModelDependencyError("tokenizers") from None
        folder = path.parent
        raw = files.read_bytes(path, folder, max_bytes=MAX_TOKENIZER_BYTES)
        try:
            tokenizer = Tokenizer.from_str(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise files.file_error(path, folder, "is not UTF-8 text") from None
        except Exception as error:  # the Rust side raises plain Exceptions
            message = files.scrub(str(error), folder)
            raise files.file_error(path, folder, f"is not a tokenizer file: {message}") from None
        return cls(tokenizer, max_length=max_length, pad_token_id=pad_token_id)

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    @property
    def id_count(self) -> int:
        """One more than the largest id the tokenizer can produce, added tokens included: the
        rows the word embeddings need."""
        return max(self._tokenizer.get_vocab(with_added_tokens=True).values(), default=-1) + 1

    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids`, special tokens left out, as the folder's decoder joins them."""
        return self._tokenizer.decode(list(ids), skip_special_tokens=True)

    def id_token(self, token_id: int) -> str:
        """The token an id stands for ('' for an id the vocabulary lacks)."""
        return self._tokenizer.id_to_token(token_id) or ""

    def token_id(self, token: str) -> int | None:
        return self._tokenizer.token_to_id(token)

    def encode(
        self, texts: Sequence[str], *, truncate: bool = False, may_truncate: bool = True
    ) -> TokenizedBatch:
        """Tokenize raw texts; offsets are character spans of each text. `may_truncate`: whether
        the caller can cut (the refusal of a long text offers truncation only then)."""
        _check_inputs(texts, "text")
        encodings = self._tokenizer.encode_batch(list(texts))
        return self._batch(
            encodings, tuple(texts), truncate=truncate, may_truncate=may_truncate, field="text"
        )

    def encode_words(
        self,
        sequences: Sequence[Sequence[str]],
        *,
        truncate: bool = False,
        may_truncate: bool = True,
    ) -> TokenizedBatch:
        """Tokenize sequences already split into words; word id i is ``sequences[b][i]``.

        Offsets are then character spans within each word.
        """
        _check_inputs(sequences, "sequences")
        words = [list(sequence) for sequence in sequences]
        encodings = self._tokenizer.encode_batch(words, is_pretokenized=True)
        inputs = tuple(tuple(sequence) for sequence in words)
        return self._batch(
            encodings, inputs, truncate=truncate, may_truncate=may_truncate, field="sequences"
        )

    def _batch(
        self,
        encodings: list[Encoding],
        inputs: tuple[str | tuple[str, ...], ...],
        *,
        truncate: bool,
        may_truncate: bool,
        field: str,
    ) -> TokenizedBatch:
        if not truncate:
            self._refuse_overflow(encodings, field, may_truncate=may_truncate)
        ids = [encoding.ids for encoding in encodings]
        types = [encoding.type_ids for encoding in encodings]
        return TokenizedBatch(
            input_ids=_pad(ids, self.pad_token_id),
            token_type_ids=_pad(types, 0),
            attention_mask=_pad([[1] * len(row) for row in ids], 0).bool(),
            tokens=tuple(tuple(encoding.tokens) for encoding in encodings),
            word_ids=tuple(tuple(encoding.word_ids) for encoding in encodings),
            offsets=tuple(tuple(encoding.offsets) for encoding in encodings),
            inputs=inputs,
            # counted only when a cut is allowed: uncut, they are the lengths
            original_lengths=tuple(map(_original_length, encodings)) if truncate else (),
        )

    def _refuse_overflow(
        self, encodings: list[Encoding], field: str, *, may_truncate: bool
    ) -> None:
        for index, encoding in enumerate(encodings):
            if encoding.overflowing:
                advice = "shorten it or ask for truncation" if may_truncate else "shorten it"
                raise InputError(
                    f"{field}[{index}] has {_original_length(encoding)} tokens"
                    f"{_special_tokens_note(encoding)}; this model takes at most "
                    f"{self.max_length}: {advice}",
                    field=f"{field}.{index}",
                )


def _special_tokens_note(encoding: Encoding) -> str:
    """' ([CLS] and [SEP] included)': the special tokens the folder's tokenizer added, as it
    names them ('' for a tokenizer that adds none, as GPT-2's)."""
    added = [
        token
        for token, special in zip(encoding.tokens, encoding.special_tokens_mask, strict=True)
        if special
    ]
    return f" ({' and '.join(dict.fromkeys(added))} included)" if added else ""


def _original_length(encoding: Encoding) -> int:
    """The length a truncated encoding had: its own tokens and the overflow's, each overflow
    chunk counted without the special tokens the post-processor framed it with."""
    cut = sum(sum(word is not None for word in chunk.word_ids) for chunk in encoding.overflowing)
    return len(encoding.ids) + cut


def _check_inputs(inputs: Sequence[object], field: str) -> None:
    if isinstance(inputs, str) or not inputs:
        raise InputError(f"{field} must be a non-empty list", field=field)
    for index, item in enumerate(inputs):
        if not _is_text(item, words=field == "sequences"):
            kind = "a list of strings" if field == "sequences" else "a string"
            raise InputError(f"{field}[{index}] must be {kind}", field=f"{field}.{index}")


def _is_text(item: object, *, words: bool) -> bool:
    if not words:
        return isinstance(item, str)
    return (
        isinstance(item, Sequence)
        and not isinstance(item, str)
        and all(isinstance(word, str) for word in item)
    )


def _pad(rows: list[list[int]], value: int) -> Tensor:
    """Right-pad integer rows into a (B, L_max) int64 tensor."""
    length = max(len(row) for row in rows)
    return torch.tensor([row + [value] * (length - len(row)) for row in rows], dtype=torch.int64)
