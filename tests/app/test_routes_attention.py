"""POST /attention and the probes in-process: the ASGI app, its lifespan entered, through httpx."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
import ormsgpack
import pytest
import torch
from fastapi import FastAPI

from app.http.encoding import decode_msgpack_arrays
from app.main import create_app
from app.service import Service
from app.serving.runtime import Admission
from app.serving.settings import Settings
from attention import STEPS

SMALL = {"d_model": 8, "num_heads": 2}
WAIT_LIMIT_S = 5.0
KEEP_THREADS = torch.get_num_threads()  # the lifespan sets torch's threads: keep this process's


@asynccontextmanager
async def serving(**settings: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(Settings(torch_threads=KEEP_THREADS, **settings))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as client,
    ):
        yield app, client


async def until_computing(admission: Admission) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while admission.running == 0:
        assert time.monotonic() < deadline, "the blocking work never started"
        await asyncio.sleep(0.005)


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with serving() as pair:
        yield pair


@pytest.fixture(scope="module")
def client(served: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return served[1]


@pytest.fixture(scope="module")
def service(served: tuple[FastAPI, httpx.AsyncClient]) -> Service:
    service: Service = served[0].state.service
    return service


pytestmark = pytest.mark.anyio


async def test_a_request_gives_one_result_per_sequence(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/attention",
        json={"text": ["Hello, world!", "Bye"], "config": SMALL, "output": {"steps": ["q"]}},
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    assert [result["tokens"] for result in payload["results"]] == [
        ["Hello", ",", "world", "!"], ["Bye"],
    ]  # fmt: skip
    assert np.array(payload["results"][0]["attention"]).shape == (2, 4, 4)
    assert np.array(payload["results"][1]["steps"]["q"]).shape == (2, 1, 4)
    assert payload["config"]["head_dim"] == 4
    assert payload["meta"]["queue_ms"] >= 0


async def test_msgpack_is_served_when_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/attention", json={"text": "a b", "config": SMALL},
        headers={"accept": "application/msgpack"},
    )  # fmt: skip

    assert response.headers["content-type"] == "application/msgpack"
    payload = decode_msgpack_arrays(ormsgpack.unpackb(response.content))
    assert payload["results"][0]["output"].shape == (2, 8)


async def test_bfloat16_numbers_come_as_float32_arrays_near_the_float32_answer(
    client: httpx.AsyncClient,
) -> None:
    body: dict[str, Any] = {"text": "a b c d e f", "config": {"d_model": 32, "num_heads": 4}}
    exact = (await client.post("/attention", json=body)).json()["results"][0]
    body["config"]["dtype"] = "bfloat16"
    response = await client.post("/attention", json=body, headers={"accept": "application/msgpack"})

    payload = decode_msgpack_arrays(ormsgpack.unpackb(response.content))
    assert payload["meta"]["dtype"] == "bfloat16"
    result = payload["results"][0]
    for name in ("attention", "output"):
        assert result[name].dtype == np.float32  # numpy has no bfloat16
        assert not (result[name].view(np.uint32) & 0xFFFF).any()  # bfloat16 numbers
        np.testing.assert_allclose(result[name], exact[name], rtol=0, atol=0.02)


async def test_the_seeded_model_is_built_once_per_configuration(
    client: httpx.AsyncClient, service: Service
) -> None:
    body = {"text": "a", "config": {**SMALL, "seed": 1234}}
    before = len(service.cache)

    for _ in range(3):
        assert (await client.post("/attention", json=body)).status_code == 200

    assert len(service.cache) == before + 1


async def test_library_errors_are_422_at_the_request_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/attention", json={"text": "a", "config": {"d_model": 64, "num_heads": 10}}
    )

    assert response.status_code == 422
    assert response.json() == {"detail": [{
        "loc": ["body", "config", "num_heads"],
        "msg": "d_model=64 is not divisible by num_heads=10",
        "type": "config_error",
    }]}  # fmt: skip


async def test_validation_errors_leave_the_input_out(client: httpx.AsyncClient) -> None:
    response = await client.post("/attention", json={"text": "a", "secret": "x" * 100})

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body", "secret"], "msg": "Extra inputs are not permitted",
         "type": "extra_forbidden"},
    ]  # fmt: skip


async def test_invalid_json_is_400_and_other_media_415(client: httpx.AsyncClient) -> None:
    broken = await client.post(
        "/attention", content=b"{", headers={"content-type": "application/json"}
    )
    form = await client.post("/attention", content=b"a=1", headers={"content-type": "text/csv"})

    assert broken.status_code == 400
    assert form.status_code == 415


async def test_healthz_and_readyz_answer_once_started(
    client: httpx.AsyncClient, service: Service
) -> None:
    assert service.ready
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_readiness_is_503_while_draining_and_liveness_stays_200() -> None:
    async with serving() as (app, client):
        app.state.service.draining = True

        ready = await client.get("/readyz")
        alive = await client.get("/healthz")

    assert ready.status_code == 503
    assert ready.json() == {"detail": "draining: shutting down"}
    assert alive.status_code == 200


async def test_info_reports_the_settings_limits() -> None:
    async with serving(max_tokens=16, max_response_bytes=12345) as (_, client):
        info = (await client.get("/info")).json()

    assert info["limits"]["max_tokens"] == 16
    assert info["limits"]["max_response_bytes"] == 12345
    assert info["device"] == "cpu" or info["device"].startswith("cuda")


async def test_limits_of_the_settings_answer_413() -> None:
    async with serving(max_tokens=3, max_batch=1) as (_, client):
        long = await client.post("/attention", json={"text": "a b c d", "config": SMALL})
        wide = await client.post("/attention", json={"text": ["a", "b"], "config": SMALL})

    assert long.status_code == 413
    assert long.json() == {"detail": "tokens per sequence is 4, over the limit max_tokens=3"}
    assert wide.status_code == 413


async def test_a_busy_service_answers_429_with_retry_after_and_then_serves_again() -> None:
    release = threading.Event()
    async with serving(max_concurrency=1, max_queue=0, request_timeout_s=30) as (app, client):
        admission = app.state.service.admission
        blocker = asyncio.create_task(admission.run(release.wait))
        try:
            await until_computing(admission)
            busy = await client.post("/attention", json={"text": "a", "config": SMALL})
        finally:
            release.set()
        await blocker
        after = await client.post("/attention", json={"text": "a", "config": SMALL})

    assert busy.status_code == 429
    assert busy.headers["retry-after"] == "3"
    assert "overloaded" in busy.json()["detail"]
    assert after.status_code == 200


async def test_a_request_that_cannot_get_a_slot_in_time_answers_504() -> None:
    release = threading.Event()
    async with serving(max_concurrency=1, max_queue=1, request_timeout_s=0.3) as (app, client):
        admission = app.state.service.admission
        blocker = asyncio.create_task(admission.run(release.wait))
        try:
            await until_computing(admission)
            late = await client.post("/attention", json={"text": "a", "config": SMALL})
        finally:
            release.set()
        await asyncio.gather(blocker, return_exceptions=True)

    assert late.status_code == 504
    assert "deadline of 0.3 s" in late.json()["detail"]


async def test_steps_lists_the_registry_in_pipeline_order() -> None:
    async with serving() as (_, client):
        listed = (await client.get("/steps")).json()

    assert [step["name"] for step in listed] == list(STEPS)
    assert listed[STEPS.index("q")] == {
        "name": "q",
        "layout": "head_queries",
        "shape": "H × L × d_k",
        "meaning": "queries per head (after RoPE when configured)",
    }


async def test_a_client_gone_before_its_body_is_499_not_a_logged_500(
    served: tuple[FastAPI, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = served
    body = b'{"sequences": [["a", "b"]]}'
    chunks = iter([
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.disconnect"},
    ])  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(chunks)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/attention", "raw_path": b"/attention", "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("app", 80),
    }  # fmt: skip
    await app(scope, receive, send)

    assert sent[0]["status"] == 499
    assert not [record for record in caplog.records if record.levelname == "ERROR"]
