"""Pretrained requests joined: each member's whole answer is, byte for byte, its answer with
batching off; members differ in everything after the forward; a bad member is refused alone.

Answers are compared as MessagePack (raw array bytes: equal answers are bitwise equal numbers)
or as JSON, without `meta` (timings). The torch threads are the service's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import ormsgpack
import pytest

from app.http.encoding import JSON, MSGPACK, Body
from app.http.schemas import AttentionRequest
from app.pipelines import Context, Prepared, choose
from app.pipelines.encoder import batching
from app.pipelines.encoder.batching import EncoderJoin
from app.service import Service
from app.serving.runtime import Admission, Timing
from app.serving.settings import Settings
from attention import InputError
from attention.bert import JoinRule, bundled_model_path, join_rule
from tests.support.service import service_of

pytestmark = pytest.mark.anyio
requires_bundled_model = pytest.mark.skipif(
    bundled_model_path() is None, reason="the bundled model is missing ('model' extra)"
)
MODEL = "all-minilm-l6-v2"
TEXT = "the man who passes the sentence should swing the sword"  # ten words
FORMS: list[tuple[dict[str, Any], str]] = [
    ({}, MSGPACK),
    ({"layers": [1, 3], "output": {"attention": "average", "metrics": True}}, MSGPACK),
    ({"output": {"attention": "none", "embedding": True}}, JSON),  # every layer fused
    ({"text": [TEXT, "a shorter one"], "output": {"analysis": True}}, MSGPACK),  # padded
    ({"output": {"heads": [0, 2], "top_k": 3, "precision": 3}}, JSON),
]


@pytest.fixture
def on() -> Iterator[Service]:
    yield from service_of(Settings(batch_wait_ms=50))


@pytest.fixture
def off() -> Iterator[Service]:
    yield from service_of(Settings(batch_wait_ms=0))


def request_of(index: int, form: dict[str, Any], model: str = MODEL) -> AttentionRequest:
    body = {"model": model, "text": f"{TEXT} {index}", **form}
    return AttentionRequest.model_validate(body)


async def prepared(service: Service, request: AttentionRequest, media: str) -> Prepared:
    return await choose(request, Context(service, time.perf_counter(), Timing(), media))


async def answers(
    service: Service, requests: list[AttentionRequest], media: list[str]
) -> list[Body | BaseException]:
    """Each request's answer through the batcher, all prepared first and then run together
    (as concurrent requests reach it); an error stays that request's."""
    ready = [await prepared(service, r, m) for r, m in zip(requests, media, strict=True)]
    timing = Timing()
    return await asyncio.gather(
        *(service.batcher.run(p.work, timing, p.estimate.peak_bytes, p.inline, p.join)
          for p in ready),
        return_exceptions=True,
    )  # fmt: skip


def without_meta(body: Body | BaseException, media: str) -> dict[str, Any]:
    assert isinstance(body, bytes), body
    answer: dict[str, Any] = ormsgpack.unpackb(body) if media == MSGPACK else orjson.loads(body)
    del answer["meta"]
    return answer


def assert_nothing_held(admission: Admission) -> None:
    assert (admission.memory.reserved, admission.running, admission.waiting) == (0, 0, 0)


def assert_joined_equal_alone(
    together: list[Body | BaseException], alone: list[Body | BaseException], media: list[str]
) -> None:
    for ours, theirs, kind in zip(together, alone, media, strict=True):
        assert without_meta(ours, kind) == without_meta(theirs, kind)


@requires_bundled_model
async def test_joined_answers_are_byte_for_byte_the_answers_with_batching_off(
    on: Service, off: Service
) -> None:
    requests = [request_of(index, form) for index, (form, _) in enumerate(FORMS)]
    media = [kind for _, kind in FORMS]
    together = await answers(on, requests, media)
    assert on.batcher.joined == len(FORMS)  # one pass for all five
    alone = await answers(off, requests, media)
    assert off.batcher.joined == 0
    assert_joined_equal_alone(together, alone, media)
    assert_nothing_held(on.admission)


@requires_bundled_model
async def test_a_bad_queries_shaping_is_that_members_422_alone(on: Service, off: Service) -> None:
    good = [request_of(index, {}) for index in range(3)]
    bad = request_of(9, {"output": {"queries": {"start": 400, "stop": 410}}})
    requests = [good[0], bad, good[1], good[2]]
    media = [MSGPACK] * 4

    async def answer(request: AttentionRequest) -> Body:
        ready = await prepared(on, request, MSGPACK)
        return await on.batcher.run(ready.work, Timing(), ready.estimate.peak_bytes,
                                    ready.inline, ready.join)  # fmt: skip

    together = await asyncio.gather(*(answer(r) for r in requests), return_exceptions=True)
    error = together.pop(1)
    assert isinstance(error, InputError)
    assert error.field == "output.queries.start"
    assert "400" in str(error)
    assert on.batcher.joined == 3
    alone = await answers(off, good, media[:3])
    assert_joined_equal_alone(together, alone, media[:3])
    assert_nothing_held(on.admission)


@requires_bundled_model
async def test_an_error_of_one_answer_reaches_that_member_only(on: Service) -> None:
    requests = [request_of(index, {}) for index in range(3)]
    ready = [await prepared(on, request, MSGPACK) for request in requests]

    def broken(*_: Any) -> Body:
        raise InputError("this member's answer could not be cut", field="output")

    assert isinstance(ready[1].join, EncoderJoin)
    ready[1] = dataclasses.replace(ready[1], join=dataclasses.replace(ready[1].join, finish=broken))
    together = await asyncio.gather(
        *(on.batcher.run(p.work, Timing(), p.estimate.peak_bytes, p.inline, p.join)
          for p in ready),
        return_exceptions=True,
    )  # fmt: skip
    assert isinstance(together[1], InputError)
    assert all(isinstance(body, bytes) for body in (together[0], together[2]))
    assert on.batcher.joined == 3
    assert_nothing_held(on.admission)


@requires_bundled_model
async def test_members_under_the_measured_rule_run_alone_in_the_pass(
    on: Service, off: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule that admits 5 rows or more: the ten-word texts join, the two-word ones (4
    tokens) run their own work in the pass; every answer is still its answer alone."""
    joined: list[list[int]] = []
    real_joint_forward = batching.joint_forward

    def recording(model: Any, calls: list[Any]) -> Any:
        joined.append([call.rows for call in calls])
        return real_joint_forward(model, calls)

    monkeypatch.setattr(batching, "join_rule", lambda _: JoinRule(smallest_rows=5))
    monkeypatch.setattr(batching, "joint_forward", recording)
    short = [AttentionRequest.model_validate({"model": MODEL, "text": f"a {i}"}) for i in (1, 2)]
    requests = [request_of(0, {}), short[0], request_of(1, {}), short[1]]
    media = [MSGPACK] * 4
    together = await answers(on, requests, media)
    assert on.batcher.joined == 4  # one pass of the batcher
    assert len(joined) == 1  # in which two members were joined, two ran alone
    assert len(joined[0]) == 2
    assert min(joined[0]) >= 5
    alone = await answers(off, requests, media)
    assert_joined_equal_alone(together, alone, media)
    assert_nothing_held(on.admission)


@requires_bundled_model
async def test_what_never_joins_is_never_offered(on: Service) -> None:
    traced = request_of(0, {"output": {"steps": ["q"]}})
    wide = request_of(1, {"config": {"dtype": "float64"}})
    assert (await prepared(on, traced, MSGPACK)).join is None
    assert (await prepared(on, wide, MSGPACK)).join is None
    rule = join_rule(on.pretrained.get().model)
    if rule is not None and rule.smallest_rows > 1:
        tiny = AttentionRequest.model_validate({"model": MODEL, "sequences": [["a"]]})
        rows = 3  # [CLS] a [SEP]
        assert ((await prepared(on, tiny, MSGPACK)).join is None) == (rows < rule.smallest_rows)


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Service]:
    pytest.importorskip("safetensors")
    pytest.importorskip("tokenizers")
    from tests.support.tiny_bert import write_tiny_encoder

    write_tiny_encoder(tmp_path / "Tiny-bert", "bert", pooling="mean")
    yield from service_of(Settings(batch_wait_ms=50, models_dir=str(tmp_path)))


async def test_encoder_folders_of_the_library_join_too(library: Service) -> None:
    text = "the man who swing the sword ."
    forms = [{}, {"output": {"embedding": True, "analysis": True}}, {"layers": [1]}]
    requests = [
        AttentionRequest.model_validate({"model": "tiny-bert", "text": f"{text} {'the ' * i}",
                                         **form})
        for i, form in enumerate(forms)
    ]  # fmt: skip
    media = [MSGPACK] * 3
    together = await answers(library, requests, media)
    assert library.batcher.joined == 3
    off_library = Service.from_settings(
        Settings(batch_wait_ms=0, models_dir=library.settings.models_dir)
    )
    try:
        alone = await answers(off_library, requests, media)
    finally:
        off_library.admission.shutdown()
    assert_joined_equal_alone(together, alone, media)
    assert_nothing_held(library.admission)


@requires_bundled_model
async def test_bfloat16_requests_join_once_their_copy_is_loaded(on: Service, off: Service) -> None:
    form = {"config": {"dtype": "bfloat16"}}
    requests = [request_of(index, form) for index in range(3)]
    media = [MSGPACK] * 3
    first = await answers(on, requests[:1], media[:1])  # loads the copy, alone
    assert on.batcher.joined == 0
    together = await answers(on, requests, media)
    assert on.batcher.joined == 3
    alone = await answers(off, requests, media)
    assert_joined_equal_alone(together, alone, media)
    assert_joined_equal_alone(first, alone[:1], media[:1])
    assert_nothing_held(on.admission)
