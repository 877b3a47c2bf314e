"""attention_client against a real server (`python -m app` on a loopback port), and its retries
and errors against a stand-in transport."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import numpy as np
import ormsgpack
import pytest

from app.http.schemas import AttentionRequest, HeadConfig, OutputOptions
from attention_client import (
    AttentionClient,
    ClientError,
    End,
    Head,
    InvalidRequest,
    Layer,
    Overloaded,
    ServerError,
    TooLarge,
    assemble,
    build_request,
)
from attention_client.client import (
    CONFIG_FIELDS,
    MSGPACK_SEQ,
    OUTPUT_FIELDS,
    REQUEST_FIELDS,
    retry_after_seconds,
)
from attention_client.frames import msgpack_frames, object_end
from tests.support.server import RunningServer


def test_keywords_go_where_the_schema_has_them() -> None:
    body = build_request(text="a b", model="random", num_heads=2, causal=True, top_k=3,
                         queries=range(1, 4), heads=(0,), array_dtype="float16")  # fmt: skip
    assert body == {
        "text": "a b", "model": "random",
        "config": {"num_heads": 2, "causal": True},
        "output": {"top_k": 3, "queries": {"start": 1, "stop": 4}, "heads": (0,),
                   "dtype": "float16"},
    }  # fmt: skip
    with pytest.raises(TypeError, match="'topk'"):
        build_request(text="a", topk=3)
    with pytest.raises(ValueError, match="step 1"):
        build_request(text="a", queries=range(0, 9, 2))


def test_the_client_knows_every_field_of_the_schema() -> None:
    assert set(AttentionRequest.model_fields) - {"config", "output"} == REQUEST_FIELDS
    assert set(HeadConfig.model_fields) == CONFIG_FIELDS
    assert set(OutputOptions.model_fields) - {"dtype"} == OUTPUT_FIELDS


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    later = datetime.now(UTC) + timedelta(seconds=20)
    assert 15 < (retry_after_seconds(format_datetime(later, usegmt=True)) or 0) <= 20


def stand_in(statuses: list[int], retry_after: str = "2") -> tuple[AttentionClient, list[float]]:
    """A client whose service answers `statuses` in turn (then 200), recording its waits."""
    answers = iter(statuses)
    waits: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        status = next(answers, 200)
        if status == 200:
            return httpx.Response(200, json=[{"name": "q"}])
        detail = {"detail": f"busy ({status})"}
        return httpx.Response(status, json=detail, headers={"retry-after": retry_after})

    client = AttentionClient(transport=httpx.MockTransport(handle), retries=2, max_wait_s=5,
                             sleep=waits.append)  # fmt: skip
    return client, waits


def test_429_and_503_are_retried_after_retry_after() -> None:
    client, waits = stand_in([429, 503])
    assert client.steps() == [{"name": "q"}]
    assert waits == [2.0, 2.0]


def test_retries_are_bounded_and_end_in_overloaded() -> None:
    client, waits = stand_in([503, 503, 503, 503], retry_after="600")
    with pytest.raises(Overloaded) as caught:
        client.steps()
    assert waits == [5, 5]  # each wait capped at max_wait_s, two retries
    assert caught.value.status == 503
    assert caught.value.retry_after == 600.0
    assert caught.value.detail == "busy (503)"


# -- against a real server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def client(live_server: RunningServer) -> Iterator[AttentionClient]:
    with AttentionClient(live_server.base_url) as session_client:
        yield session_client


@pytest.mark.integration
def test_arrays_come_as_numpy_and_equal_the_json_answer(
    client: AttentionClient, live_server: RunningServer
) -> None:
    answer = client.attention(text="the man who passes", d_model=8, num_heads=2, steps=["q"])
    body = build_request(text="the man who passes", d_model=8, num_heads=2, steps=["q"])
    reference = httpx.post(f"{live_server.base_url}/attention", json=body).json()
    (result,) = answer["results"]
    assert isinstance(result["attention"], np.ndarray)
    assert result["attention"].shape == (2, 4, 4)
    assert result["steps"]["q"].shape == (2, 4, 4)
    np.testing.assert_allclose(result["attention"], reference["results"][0]["attention"])
    assert result["tokens"] == ["the", "man", "who", "passes"]


@pytest.mark.integration
def test_shaped_answers_in_float16(client: AttentionClient) -> None:
    answer = client.attention(text="a b c d e f", num_heads=2, d_model=8, top_k=2, pool=2,
                              heads=[1], queries=range(0, 3), array_dtype="float16")  # fmt: skip
    (result,) = answer["results"]
    assert result["attention"] is None
    assert result["top_k"]["weights"].dtype == np.float16
    assert result["top_k"]["keys"].shape == (1, 3, 2)
    assert result["pool"]["max"].shape == (1, 2, 2)
    assert result["queries"] == [0, 1, 2]


@pytest.mark.integration
def test_a_bad_field_raises_invalid_request_naming_it(client: AttentionClient) -> None:
    with pytest.raises(InvalidRequest) as caught:
        client.attention(text="a", top_k=0)
    assert caught.value.status == 422
    assert caught.value.fields == ["output.top_k"]
    assert "output.top_k" in str(caught.value)


@pytest.mark.integration
def test_an_answer_over_the_limits_raises_too_large_with_the_advice(
    client: AttentionClient,
) -> None:
    with pytest.raises(TooLarge) as caught:
        client.attention(sequences=[list(range(32_768))], d_model=16, num_heads=1)
    assert caught.value.status == 413
    assert "output.top_k or output.pool" in caught.value.message


# -- streamed answers ---------------------------------------------------------------------------

PACKED_VALUES: list[Any] = [
    None, True, False, 0, 127, -32, -33, 255, 65_535, 2**32, -(2**40), 1.5, 2.5e300,
    "", "a" * 31, "b" * 200, "c" * 70_000, b"", b"x" * 300, b"y" * 70_000,
    list(range(20)), {str(key): key for key in range(20)}, [[{"deep": [1, b"\x00"]}]],
]  # fmt: skip


@pytest.mark.parametrize("value", PACKED_VALUES, ids=range(len(PACKED_VALUES)))
def test_a_messagepack_object_ends_where_packb_ended_it_and_not_before(value: Any) -> None:
    packed = ormsgpack.packb(value)
    assert object_end(packed + b"\xc0") == len(packed)
    assert all(object_end(packed[:cut]) is None for cut in range(len(packed)))


FRAMES: list[dict[str, Any]] = [
    {"frame": "head", "model": "m", "config": {}, "layers": [1, 0], "layer_axis": True,
     "results": [{"tokens": ["a", "b"], "key_tokens": ["a", "b"]}]},
    {"frame": "layer", "layer": 0, "results": [{"attention": np.zeros((2, 2, 2), np.float32),
                                                "queries": [0, 1]}]},
    {"frame": "layer", "layer": 1, "results": [{"attention": np.ones((2, 2, 2), np.float32),
                                                "queries": [0, 1]}]},
    {"frame": "end", "results": [{"output": np.ones((2, 4), np.float32)}], "meta": {"ms": 1}},
]  # fmt: skip


def packed_frames(frames: list[dict[str, Any]]) -> bytes:
    return b"".join(ormsgpack.packb(frame, default=msgpack_array) for frame in frames)


def msgpack_array(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"dtype": value.dtype.name, "shape": list(value.shape), "data": value.tobytes()}
    raise TypeError(type(value).__name__)


@pytest.mark.parametrize("piece", [1, 5, 64, 10_000])
def test_frames_are_typed_and_assembled_into_the_whole_answer(piece: int) -> None:
    data = packed_frames(FRAMES)
    frames = list(msgpack_frames(data[i : i + piece] for i in range(0, len(data), piece)))

    assert [type(frame) for frame in frames] == [Head, Layer, Layer, End]
    answer = assemble(frames)
    (result,) = answer["results"]
    assert result["attention"].shape == (2, 2, 2, 2)  # layers in the head's order: 1, then 0
    assert result["attention"][0].sum() == 8
    assert result["attention"][1].sum() == 0
    assert result["queries"] == [0, 1]
    assert result["tokens"] == ["a", "b"]
    assert answer["meta"] == {"ms": 1}


def test_an_error_frame_raises_the_typed_error_of_its_status() -> None:
    failed = {"frame": "error", "error": {"status": 504, "detail": "past its deadline of 1 s"}}
    frames = msgpack_frames([packed_frames([FRAMES[0], failed])])
    assert isinstance(next(frames), Head)
    with pytest.raises(ServerError) as caught:
        next(frames)
    assert caught.value.status == 504
    assert caught.value.detail == "past its deadline of 1 s"


def test_a_stream_is_retried_before_it_starts_and_read_as_frames() -> None:
    statuses = iter([503])
    waits: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept"] == MSGPACK_SEQ
        if next(statuses, 200) == 503:
            return httpx.Response(503, json={"detail": "busy"}, headers={"retry-after": "1"})
        return httpx.Response(200, content=packed_frames(FRAMES))

    client = AttentionClient(transport=httpx.MockTransport(handle), sleep=waits.append)
    frames = list(client.stream(text="a b", model="m"))
    assert [type(frame) for frame in frames] == [Head, Layer, Layer, End]
    assert waits == [1.0]


def test_a_stream_cut_inside_a_frame_raises_a_client_error() -> None:
    data = packed_frames(FRAMES)

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=data[:-5])

    client = AttentionClient(transport=httpx.MockTransport(handle))
    frames = client.stream(text="a b", model="m")
    assert isinstance(next(frames), Head)
    with pytest.raises(ClientError, match="ended inside a frame"):
        list(frames)


@pytest.mark.integration
def test_a_stream_of_the_pretrained_model_assembles_into_its_whole_answer(
    client: AttentionClient,
) -> None:
    fields = {"model": "all-minilm-l6-v2", "text": ["The man who passes", "the sword"],
              "metrics": True, "top_k": 3, "layers": [5, 0, 2]}  # fmt: skip
    whole = client.attention(**fields)
    frames = list(client.stream(**fields))

    assert [frame.layer for frame in frames if isinstance(frame, Layer)] == [0, 2, 5]
    streamed = assemble(frames)
    for ours, theirs in zip(streamed["results"], whole["results"], strict=True):
        assert ours["tokens"] == theirs["tokens"]
        np.testing.assert_array_equal(ours["top_k"]["weights"], theirs["top_k"]["weights"])
        np.testing.assert_array_equal(ours["metrics"]["entropy"], theirs["metrics"]["entropy"])
        np.testing.assert_array_equal(ours["output"], theirs["output"])


@pytest.mark.integration
def test_a_stream_left_early_leaves_the_service_serving(client: AttentionClient) -> None:
    for frame in client.stream(model="all-minilm-l6-v2", text="The man who passes " * 20):
        if isinstance(frame, Layer):
            break  # the connection closes; the service stops computing
    with pytest.raises(InvalidRequest) as caught:
        list(client.stream(model="all-minilm-l6-v2", text="a", layers=[99]))
    assert caught.value.fields == ["layers"]
    assert client.attention(text="still serving", d_model=8, num_heads=2)["results"]
