"""Compression in-process: the coding negotiated from Accept-Encoding, only for text-like answers
of MINIMUM_BYTES or more, whole answers and streamed static files alike, the bytes decoding to
exactly the uncompressed answer."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.http.compression import MINIMUM_BYTES, ZSTANDARD, choose_coding
from tests.app.test_routes_attention import serving

pytestmark = pytest.mark.anyio

BOTH = ("zstd", "gzip")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("identity", None),
        ("gzip", "gzip"),
        ("GZIP;q=0.5", "gzip"),
        ("gzip, zstd", "zstd"),  # equal: the server's preference
        ("gzip;q=1, zstd;q=0.9", "gzip"),
        ("zstd;q=0, gzip;q=0.1", "gzip"),
        ("gzip;q=0", None),
        ("*", "zstd"),
        ("*;q=0.5, zstd;q=0", "gzip"),  # an explicit name wins over the wildcard
        ("br, deflate", None),
        ("gzip;q=nonsense", None),
        ("gzip;q=nan", None),
    ],
)
def test_the_coding_is_the_highest_rated_one_the_server_has(
    header: str | None, expected: str | None
) -> None:
    assert choose_coding(header, BOTH) == expected


def test_without_zstandard_only_gzip_is_offered() -> None:
    assert choose_coding("zstd", ("gzip",)) is None
    assert choose_coding("zstd, gzip;q=0.1", ("gzip",)) == "gzip"


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    pair: tuple[FastAPI, httpx.AsyncClient]
    async with serving() as pair:
        yield pair[1]


LARGE: dict[str, Any] = {"text": "one two three four five six", "config": {"d_model": 16}}
SMALL: dict[str, Any] = {"text": "a", "config": {"d_model": 4, "num_heads": 1},
                         "output": {"precision": 1}}  # fmt: skip


async def raw(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """The response with its body as sent (httpx would decode gzip and zstd); without an
    Accept-Encoding of the test's, identity (httpx would send its own)."""
    headers = {"accept-encoding": "identity", **(headers or {})}
    async with client.stream(method, url, headers=headers, **kwargs) as response:
        body = b"".join([part async for part in response.aiter_raw()])
    response._content = body  # the raw bytes, for the test to decode itself
    return response


def decoded(response: httpx.Response) -> bytes:
    coding = response.headers.get("content-encoding")
    if coding == "gzip":
        return gzip.decompress(response.content)
    if coding == "zstd":
        assert ZSTANDARD is not None
        return bytes(ZSTANDARD.ZstdDecompressor().decompressobj().decompress(response.content))
    return response.content


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
async def test_a_large_json_answer_is_compressed_as_accepted(
    client: httpx.AsyncClient, coding: str
) -> None:
    if coding == "zstd" and ZSTANDARD is None:
        pytest.skip("the zstandard package is not installed")
    plain = await raw(client, "POST", "/attention", json=LARGE)
    packed = await raw(client, "POST", "/attention", json=LARGE,
                       headers={"accept-encoding": coding})  # fmt: skip
    assert "content-encoding" not in plain.headers
    assert len(plain.content) >= MINIMUM_BYTES
    assert packed.headers["content-encoding"] == coding
    assert packed.headers["vary"] == "Accept-Encoding"
    assert int(packed.headers["content-length"]) == len(packed.content) < len(plain.content)
    # the same answer but for its timings
    import orjson

    mine, theirs = orjson.loads(decoded(packed)), orjson.loads(plain.content)
    mine.pop("meta"), theirs.pop("meta")
    assert mine == theirs


async def test_a_small_answer_is_sent_as_is_but_varies(client: httpx.AsyncClient) -> None:
    response = await raw(client, "POST", "/attention", json=SMALL,
                         headers={"accept-encoding": "gzip"})  # fmt: skip
    assert len(response.content) < MINIMUM_BYTES
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"


async def test_messagepack_is_not_compressed(client: httpx.AsyncClient) -> None:
    headers = {"accept-encoding": "gzip", "accept": "application/msgpack"}
    response = await raw(client, "POST", "/attention", json=LARGE, headers=headers)
    assert len(response.content) >= MINIMUM_BYTES
    assert "content-encoding" not in response.headers


async def test_a_static_file_is_compressed_in_parts_with_a_weak_tag(
    client: httpx.AsyncClient,
) -> None:
    plain = await raw(client, "GET", "/static/explorer.js")
    packed = await raw(client, "GET", "/static/explorer.js", headers={"accept-encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert gzip.decompress(packed.content) == plain.content
    assert packed.headers["etag"] == f"W/{plain.headers['etag']}"
    headers = {"accept-encoding": "gzip", "if-none-match": packed.headers["etag"]}
    again = await raw(client, "GET", "/static/explorer.js", headers=headers)
    assert again.status_code == 304


async def test_head_and_range_requests_are_not_compressed(client: httpx.AsyncClient) -> None:
    head = await raw(client, "HEAD", "/static/explorer.js", headers={"accept-encoding": "gzip"})
    ranged = await raw(client, "GET", "/static/explorer.js",
                       headers={"accept-encoding": "gzip", "range": "bytes=0-99"})  # fmt: skip
    assert "content-encoding" not in head.headers
    assert "content-encoding" not in ranged.headers
    assert ranged.status_code == 206
    assert len(ranged.content) == 100
