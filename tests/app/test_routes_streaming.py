"""POST /attention streamed layer by layer (Accept: NDJSON or MessagePack frames), in-process.

Whole answers go through httpx's ASGI transport; a stream's timing (a frame before the end of
the computation, a client that leaves) is driven message by message by `Exchange`, with a layer
held by a patched forward instead of anything timed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import ormsgpack
import pytest
import torch
from fastapi import FastAPI
from starlette.types import Message

from app.http.encoding import JSON, MSGPACK, MSGPACK_SEQ, NDJSON, decode_msgpack_arrays
from app.http.errors import NotAcceptable
from app.http.schemas import AttentionRequest
from app.pipelines import Prepared
from app.pipelines.cost import Estimate
from app.routes.attention import frame_producer
from app.service import Service
from app.serving.runtime import Admission
from attention import checkpoint
from attention_client.errors import ServerError
from attention_client.frames import End, Frame, Head, Layer, assemble, msgpack_frames, object_end
from tests.app.test_routes_attention import serving

pytestmark = pytest.mark.anyio

MODEL = "tiny-bert"
LAYERS = 4
TEXTS = ["the man who swings the sword .", "the man"]  # ragged: padding is cut from each
WAIT_S = 60.0  # a bound on every wait, so that a broken stream fails instead of hanging


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    if find_spec("safetensors") is None or find_spec("tokenizers") is None:
        pytest.skip("safetensors and tokenizers build the tiny model folder")
    from tests.support.tiny_bert import write_tiny_bert

    folder: Path = write_tiny_bert(
        tmp_path_factory.mktemp("models") / "Tiny-BERT", {"num_hidden_layers": LAYERS}
    )
    async with serving(model_path=str(folder), request_timeout_s=5.0) as (app, _):
        yield app


@pytest.fixture
async def client(served: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=served)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        yield client


def service_of(app: FastAPI) -> Service:
    service: Service = app.state.service
    return service


# -- the frames carry the whole answer's numbers -------------------------------------------------


def assert_same(streamed: Any, whole: Any, where: str = "answer") -> None:
    """Equal to the last bit (NaN as NaN), arrays of the same dtype and shape."""
    if isinstance(whole, np.ndarray):
        assert isinstance(streamed, np.ndarray), where
        assert (streamed.dtype, streamed.shape) == (whole.dtype, whole.shape), where
        assert np.array_equal(streamed, whole, equal_nan=whole.dtype.kind == "f"), where
    elif isinstance(whole, dict):
        assert set(streamed) == set(whole), where
        for name in whole:
            assert_same(streamed[name], whole[name], f"{where}.{name}")
    elif isinstance(whole, list):
        assert len(streamed) == len(whole), where
        for index, (left, right) in enumerate(zip(streamed, whole, strict=True)):
            assert_same(left, right, f"{where}[{index}]")
    else:
        assert streamed == whole, where


async def whole_and_streamed(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> tuple[dict[str, Any], list[Frame]]:
    whole = await client.post("/attention", json=body, headers={"accept": MSGPACK})
    assert whole.status_code == 200, whole.text
    streamed = await client.post("/attention", json=body, headers={"accept": MSGPACK_SEQ})
    assert streamed.status_code == 200, streamed.text
    assert streamed.headers["content-type"] == MSGPACK_SEQ
    frames = list(msgpack_frames([streamed.content]))
    return decode_msgpack_arrays(ormsgpack.unpackb(whole.content)), frames


ENCODER_OPTIONS = [
    {"steps": "all", "metrics": True, "analysis": True, "embedding": True},
    {"attention": "average", "metrics": True},
    {"heads": [1], "queries": {"start": 1, "stop": 5}, "top_k": 2, "pool": 2},
    {"attention": "none", "steps": ["q", "attention"], "precision": 3},
    {"top_k": 3, "dtype": "float16"},
]


@pytest.mark.parametrize("output", ENCODER_OPTIONS)
@pytest.mark.parametrize("layers", ["all", [3, 1]])
async def test_an_encoder_streams_every_number_of_its_whole_answer(
    client: httpx.AsyncClient, output: dict[str, Any], layers: Any
) -> None:
    body = {"model": MODEL, "text": TEXTS, "layers": layers, "output": output}
    whole, frames = await whole_and_streamed(client, body)

    head, *middle, end = frames
    assert isinstance(head, Head)
    assert isinstance(end, End)
    assert all(isinstance(frame, Layer) for frame in middle)
    expected = list(range(LAYERS)) if layers == "all" else layers
    assert head.layers == expected
    assert head.layer_axis
    assert [frame.layer for frame in middle if isinstance(frame, Layer)] == sorted(expected)
    answer = assemble(frames)
    assert_same(answer["results"], whole["results"])
    assert answer["config"] == whole["config"]
    assert set(answer["meta"]) == set(whole["meta"])


@pytest.mark.parametrize(
    "output", [{"steps": "all", "metrics": True}, {"top_k": 2, "pool": 2, "heads": [1]}]
)
async def test_the_random_model_streams_its_one_layer_the_same_way(
    client: httpx.AsyncClient, output: dict[str, Any]
) -> None:
    body = {"text": ["The man who passes", "Bye"], "config": {"d_model": 8, "num_heads": 2},
            "output": output}  # fmt: skip
    whole, frames = await whole_and_streamed(client, body)

    assert [type(frame) for frame in frames] == [Head, Layer, End]
    assert isinstance(frames[0], Head)
    assert not frames[0].layer_axis
    assert_same(assemble(frames)["results"], whole["results"])


async def test_ndjson_frames_are_lines_of_the_whole_json_answer(client: httpx.AsyncClient) -> None:
    body = {"model": MODEL, "text": TEXTS, "output": {"metrics": True, "precision": 4}}
    whole = (await client.post("/attention", json=body)).json()
    response = await client.post("/attention", json=body, headers={"accept": NDJSON})

    assert response.headers["content-type"] == NDJSON
    frames = [orjson.loads(line) for line in response.content.splitlines()]
    assert [frame["frame"] for frame in frames] == ["head", *["layer"] * LAYERS, "end"]
    for frame in frames[1:-1]:
        for row, result in enumerate(frame["results"]):
            expected = whole["results"][row]
            assert result["attention"] == expected["attention"][frame["layer"]]
            assert result["metrics"]["entropy"] == expected["metrics"]["entropy"][frame["layer"]]
    assert frames[-1]["results"][0]["output"] == whole["results"][0]["output"]


async def test_a_stream_is_not_compressed(client: httpx.AsyncClient) -> None:
    body = {"model": MODEL, "text": TEXTS * 8, "output": {"steps": "all"}}
    response = await client.post(
        "/attention", json=body, headers={"accept": NDJSON, "accept-encoding": "gzip"}
    )
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert len(response.content) > 1_400  # large enough to be compressed whole


async def test_errors_before_the_first_frame_are_ordinary_answers(
    client: httpx.AsyncClient,
) -> None:
    bad_layer = await client.post(
        "/attention", json={"model": MODEL, "text": "the man", "layers": [9]},
        headers={"accept": MSGPACK_SEQ},
    )  # fmt: skip
    too_large = await client.post(
        "/attention",
        json={"sequences": [list(range(20_000))], "config": {"d_model": 8, "num_heads": 2}},
        headers={"accept": NDJSON},
    )
    assert bad_layer.status_code == 422
    assert bad_layer.json()["detail"][0]["loc"][-1] == "layers"
    assert too_large.status_code == 413, too_large.text


def test_a_model_that_does_not_stream_is_a_406_naming_it_and_the_types_to_ask_for() -> None:
    request = AttentionRequest.model_validate({"text": "a", "model": "tiny-gpt2"})
    prepared = Prepared(lambda: b"", Estimate(0, 0, ""), frames=None)  # a decoder's, today

    with pytest.raises(NotAcceptable) as refused:
        frame_producer(request, prepared, NDJSON)
    assert refused.value.status_code == 406
    assert "model='tiny-gpt2' does not stream" in refused.value.message
    assert f"ask for {JSON} or {MSGPACK}" in refused.value.message


def test_the_route_documents_the_stream_types(served: FastAPI) -> None:
    content = served.openapi()["paths"]["/attention"]["post"]["responses"]["200"]["content"]
    assert {NDJSON, MSGPACK_SEQ} <= set(content)


# -- a stream as it goes: frames before the end, back-pressure, leaving, the deadline -------------


class Exchange:
    """One request to the ASGI app, its messages read as they are sent; `leave()` disconnects.

    Like a socket, `send` waits while a message is unread (a queue of one): a reader that does
    not read holds the response back."""

    def __init__(self, app: FastAPI, body: dict[str, Any], accept: str = MSGPACK_SEQ) -> None:
        content = orjson.dumps(body)
        headers = [
            (b"host", b"app"),
            (b"content-type", b"application/json"),
            (b"accept", accept.encode()),
            (b"content-length", str(len(content)).encode()),
        ]
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
                 "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/attention",
                 "raw_path": b"/attention", "query_string": b"", "root_path": "",
                 "headers": headers, "client": ("127.0.0.1", 5000),
                 "server": ("app", 80)}  # fmt: skip
        self.messages: asyncio.Queue[Message] = asyncio.Queue(maxsize=1)
        self.gone = asyncio.Event()
        self.requests = [{"type": "http.request", "body": content, "more_body": False}]
        self.buffer = bytearray()
        self.task = asyncio.ensure_future(app(scope, self.receive, self.send))

    async def send(self, message: Message) -> None:
        if not self.gone.is_set():  # a server drops what is sent to a client that left
            await self.messages.put(message)

    async def receive(self) -> Message:
        if self.requests:
            return self.requests.pop()
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def message(self) -> Message:
        return await asyncio.wait_for(self.messages.get(), WAIT_S)

    async def status(self) -> int:
        start = await self.message()
        assert start["type"] == "http.response.start"
        return int(start["status"])

    async def frame(self) -> Frame | None:
        """The next frame (None: the body ended); an error frame raises its typed error."""
        while (end := object_end(self.buffer)) is None:
            message = await self.message()
            self.buffer += message.get("body", b"")
            if not message.get("more_body", False) and object_end(self.buffer) is None:
                return None
        (frame,) = msgpack_frames([bytes(self.buffer[:end])])
        del self.buffer[:end]
        return frame

    def leave(self) -> None:
        self.gone.set()
        while not self.messages.empty():
            self.messages.get_nowait()


def hold_layer(app: FastAPI, index: int, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Layer `index` waits, at checkpoints, until the returned event is set."""
    model = service_of(app).pretrained.get(torch.float32).model
    layer = model.layers[index]
    forward = layer.forward
    release = threading.Event()

    def held(*args: Any, **kwargs: Any) -> Any:
        while not release.wait(0.01):
            checkpoint()  # the deadline and a client that left still stop it here
        return forward(*args, **kwargs)

    monkeypatch.setattr(layer, "forward", held)
    return release


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


def idle(admission: Admission) -> bool:
    return admission.running == 0 and admission.memory.reserved == 0


BODY = {"model": MODEL, "text": TEXTS, "output": {"metrics": True}}


async def test_layers_are_written_while_later_ones_are_still_computing(
    served: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = hold_layer(served, 2, monkeypatch)
    exchange = Exchange(served, BODY)

    assert await exchange.status() == 200
    head, first, second = [await exchange.frame() for _ in range(3)]
    assert isinstance(head, Head)
    assert isinstance(first, Layer)
    assert isinstance(second, Layer)
    assert (first.layer, second.layer) == (0, 1)
    assert service_of(served).admission.running == 1  # layer 2 waits
    release.set()
    rest = [await exchange.frame() for _ in range(3)]
    assert [type(frame) for frame in rest] == [Layer, Layer, End]
    assert await exchange.frame() is None
    await exchange.task
    assert idle(service_of(served).admission)


async def test_a_reader_that_does_not_read_pauses_the_computation_holding_its_slot(
    served: FastAPI,
) -> None:
    admission = service_of(served).admission
    exchange = Exchange(served, BODY)
    assert await exchange.status() == 200
    assert isinstance(await exchange.frame(), Head)
    # not read: one frame in the queue, one being sent, FRAMES_IN_FLIGHT handed over; the work
    # (4 layers and an end) cannot finish, and keeps its slot and its bytes
    await eventually(lambda: exchange.messages.full(), "a frame waits to be read")
    assert admission.running == 1
    assert admission.memory.reserved > 0
    kinds = []
    while (frame := await exchange.frame()) is not None:
        kinds.append(type(frame))
    assert kinds == [*[Layer] * LAYERS, End]
    await exchange.task
    await eventually(lambda: idle(admission), "the slot and the budget come back")


async def test_a_client_that_leaves_stops_the_computation_and_frees_its_slot_and_bytes(
    served: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    admission = service_of(served).admission
    hold_layer(served, 1, monkeypatch)  # never released: only leaving can end it
    exchange = Exchange(served, BODY)

    assert await exchange.status() == 200
    assert isinstance(await exchange.frame(), Head)
    assert isinstance(await exchange.frame(), Layer)
    assert admission.memory.reserved > 0
    exchange.leave()
    await asyncio.wait_for(exchange.task, WAIT_S)
    await eventually(lambda: idle(admission), "the computation stops and gives all back")


async def test_past_the_deadline_a_stream_ends_with_an_error_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if find_spec("safetensors") is None or find_spec("tokenizers") is None:
        pytest.skip("safetensors and tokenizers build the tiny model folder")
    from tests.support.tiny_bert import write_tiny_bert

    folder = write_tiny_bert(tmp_path / "Tiny-BERT", {"num_hidden_layers": LAYERS})
    async with serving(model_path=str(folder), request_timeout_s=0.5) as (app, _):
        hold_layer(app, 1, monkeypatch)  # never released: the deadline passes
        exchange = Exchange(app, BODY)

        assert await exchange.status() == 200
        assert isinstance(await exchange.frame(), Head)
        assert isinstance(await exchange.frame(), Layer)
        with pytest.raises(ServerError) as late:
            await exchange.frame()
        assert late.value.status == 504
        assert "deadline of 0.5 s" in late.value.message
        await exchange.task
        await eventually(lambda: idle(service_of(app).admission), "the slot comes back")


def frames_of(data: bytes) -> Iterator[Frame]:
    return msgpack_frames([data[i : i + 7] for i in range(0, len(data), 7)])


async def test_frames_are_read_whatever_the_pieces_they_arrive_in(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/attention", json=BODY, headers={"accept": MSGPACK_SEQ})
    kinds = [type(frame) for frame in frames_of(response.content)]
    assert kinds == [Head, *[Layer] * LAYERS, End]
