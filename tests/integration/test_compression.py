"""Compression end to end: a real server's gzip answer, as it crossed the socket, decodes to the
uncompressed answer; MessagePack and small answers go as they are."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import orjson
import pytest

pytestmark = pytest.mark.integration

BODY: dict[str, Any] = {"text": "the man who passes the sentence", "config": {"d_model": 16}}


def raw_post(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    """The answer's bytes as sent: httpx would decode them."""
    with client.stream("POST", "/attention", json=BODY, headers=headers) as response:
        response._content = b"".join(response.iter_raw())
    return response


def without_timings(content: bytes) -> Any:
    answer = orjson.loads(content)
    answer.pop("meta")
    return answer


def test_gzip_is_negotiated_and_decodes_to_the_same_answer(client: httpx.Client) -> None:
    plain = raw_post(client, {"accept-encoding": "identity"})
    packed = raw_post(client, {"accept-encoding": "br;q=1, gzip;q=0.8, zstd;q=0"})

    assert packed.status_code == 200
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    assert len(packed.content) < len(plain.content)
    assert without_timings(gzip.decompress(packed.content)) == without_timings(plain.content)


def test_msgpack_is_sent_as_is(client: httpx.Client) -> None:
    response = raw_post(client, {"accept-encoding": "gzip", "accept": "application/msgpack"})
    assert response.headers["content-type"] == "application/msgpack"
    assert "content-encoding" not in response.headers
