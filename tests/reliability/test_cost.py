"""Bounded cost: the attacks that once took a worker's memory or time, each against a live server.

Every request's cost is estimated before it runs and bounded by a setting (docs/reliability.md,
the memory model). Each test sends the attack as it was reported (rows of the bounded-cost
issue), with lowered limits where the default ones would make the test slow, and requires a
clear 4xx/503, or bounded memory, and a healthy server after.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.http.encoding import JSON
from app.http.schemas import AttentionRequest
from app.pipelines.random.cost import random_estimate
from app.pipelines.random.inputs import library_config
from app.pipelines.random.labels import request_labels, request_shape
from tests.reliability.conftest import StartServer, assert_healthy
from tests.support.server import RunningServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MiB = 2**20
MODULE_CACHE = 96 * MiB
TOKEN_CACHE = 2 * MiB
COST_ENV = {
    "ATTENTION_MODULE_CACHE_BYTES": str(MODULE_CACHE),
    "ATTENTION_TOKEN_CACHE_BYTES": str(TOKEN_CACHE),
    "ATTENTION_MAX_REQUEST_BYTES": str(512 * MiB),
}
MODEL = "all-minilm-l6-v2"


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[RunningServer]:
    with start_server(COST_ENV) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        yield http


def resident_bytes(server: RunningServer) -> int:
    """The worker's resident memory (one worker: the server process itself)."""
    with open(f"/proc/{server.process.pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def memory(client: httpx.Client) -> dict[str, int]:
    use: dict[str, int] = client.get("/info").json()["memory"]
    return use


def detail(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()["detail"]


# -- row 1: the module cache is bounded in bytes --------------------------------------------------


def test_row_1_a_module_larger_than_the_cache_is_refused_before_it_is_built(
    client: httpx.Client,
) -> None:
    attack = {
        "text": "a",
        "config": {"d_model": 2048, "num_heads": 1, "vocab_size": 23000, "seed": 1,
                   "dtype": "float64"},
        "output": {"attention": "none"},
    }  # fmt: skip

    message = detail(client.post("/attention", json=attack), 413)

    assert "over the limit module_cache_bytes=100,663,296" in message
    assert memory(client)["module_cache_bytes"] <= MODULE_CACHE


def test_row_1_new_seeds_evict_old_modules_and_memory_stays_bounded(
    client: httpx.Client, server: RunningServer
) -> None:
    def body(seed: int) -> dict[str, Any]:  # 23,000 × 384 float64: 75 MB, one fits the cache
        config = {"d_model": 384, "num_heads": 1, "vocab_size": 23000, "seed": seed,
                  "dtype": "float64"}  # fmt: skip
        return {"text": "a", "config": config, "output": {"attention": "none"}}

    assert client.post("/attention", json=body(100)).status_code == 200
    first = resident_bytes(server)
    for seed in range(101, 107):
        assert client.post("/attention", json=body(seed)).status_code == 200

    use = memory(client)
    assert use["modules"] == 1
    assert use["module_cache_bytes"] <= MODULE_CACHE
    # unbounded, the six other modules would have kept 6 × 75 MB
    assert resident_bytes(server) - first < 150 * MiB


# -- row 2: the token-vector cache is bounded in bytes and counted --------------------------------


def test_row_2_unique_tokens_fill_the_token_cache_only_to_its_bound(client: httpx.Client) -> None:
    for batch in range(3):  # 3 × 500 new tokens of 512 numbers: 3 × 2.2 MB hashed
        keys = [[f"k{batch}-{index}" for index in range(500)]]
        body = {"sequences": [["q"]], "key_sequences": keys, "config": {"d_model": 512,
                "num_heads": 8, "seed": 7}}  # fmt: skip
        assert client.post("/attention", json=body).status_code == 200

    use = memory(client)
    assert 0 < use["token_cache_bytes"] <= TOKEN_CACHE
    assert use["token_vectors"] < 3 * 500


def test_row_2_the_hashing_attack_is_refused_by_its_estimate(client: httpx.Client) -> None:
    keys = [[f"u{row}-{index}" for index in range(2048)] for row in range(32)]
    attack = {"sequences": [["q"]] * 32, "key_sequences": keys,
              "config": {"d_model": 2048, "num_heads": 1, "seed": 3}}  # fmt: skip

    message = detail(client.post("/attention", json=attack), 413)

    assert "over the limit max_request_bytes=536,870,912" in message
    assert memory(client)["token_cache_bytes"] <= TOKEN_CACHE


# -- row 3: the estimate covers everything computed, kept and returned ----------------------------


def test_row_3_every_step_of_a_long_batch_is_refused_before_computing(
    client: httpx.Client,
) -> None:
    attack = {
        "sequences": [list(range(2048))] * 64,
        "key_sequences": [[0]] * 64,
        "config": {"d_model": 2048, "num_heads": 1},
        "output": {"attention": "none", "steps": "all"},
    }

    message = detail(client.post("/attention", json=attack, timeout=30), 413)

    # 64 × 2048 × 2048 numbers for each of nine token-row steps: gigabytes of JSON
    assert "over the limit max_response_bytes=268,435,456" in message
    assert "answer is estimated at" in message
    assert "fewer steps" in message


# -- row 5: text is counted before it is tokenized, off the event loop ----------------------------


def test_row_5_a_huge_text_is_refused_before_tokenizing(client: httpx.Client) -> None:
    attack = {"model": MODEL, "text": "word " * 3_200_000}  # 16 MB

    message = detail(client.post("/attention", json=attack), 413)

    assert message == "text is 16,000,000 characters, over the limit max_text_chars=200,000"
    assert client.get("/healthz").status_code == 200


# -- rows 6–9: numbers and integers the schema bounds ---------------------------------------------


def test_row_6_a_parameter_too_large_for_a_float_is_a_422_naming_it(
    client: httpx.Client,
) -> None:
    body = b'{"sequences": [["a"]], "parameters": {"in_proj_weight": 1' + b"0" * 400 + b"}}"
    response = client.post("/attention", content=body, headers={"content-type": "application/json"})

    (item,) = detail(response, 422)
    assert item["loc"] == ["body", "parameters", "in_proj_weight"]
    assert "too large for float64" in item["msg"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("window", 1180591620717411303424), ("max_positions", 18446744073709551616),
     ("window", 9223372036854775808), ("vocab_size", 2**40), ("d_model", 2**33)],
)  # fmt: skip
def test_rows_7_to_9_integers_past_the_schemas_bounds_are_422(
    client: httpx.Client, field: str, value: int
) -> None:
    body = {"sequences": [["a", "b"]], "config": {field: value}}

    (item,) = detail(client.post("/attention", json=body), 422)

    assert item["loc"] == ["body", "config", field]
    assert item["type"] == "less_than_equal"


def test_row_9_a_window_longer_than_the_sequence_is_the_same_as_none(
    client: httpx.Client,
) -> None:
    base = {"sequences": [["a", "b", "c"]], "config": {"d_model": 8, "num_heads": 2}}
    windowed = {**base, "config": {**base["config"], "window": 1_000_000}}

    plain = client.post("/attention", json=base).json()["results"][0]
    wide = client.post("/attention", json=windowed).json()["results"][0]

    assert wide["attention"] == plain["attention"]
    assert wide["fully_masked_queries"] == []


# -- rows 16, 17, 19: values that do not fit, names that point at them, tokens too long ---------


def test_row_16_an_embedding_past_float32_is_a_422_naming_the_element(
    client: httpx.Client,
) -> None:
    body = {"embeddings": [[[0.0] * 7 + [1e300]]], "config": {"d_model": 8, "num_heads": 2}}

    (item,) = detail(client.post("/attention", json=body), 422)

    assert item["loc"] == ["body", "embeddings", 0, 0, 7]
    assert "does not fit float32" in item["msg"]


def test_row_17_an_id_out_of_range_in_the_keys_names_the_keys(client: httpx.Client) -> None:
    body = {"sequences": [[0, 1]], "key_sequences": [[0, 5000]],
            "config": {"d_model": 8, "num_heads": 2}}  # fmt: skip

    (item,) = detail(client.post("/attention", json=body), 422)

    assert item["loc"] == ["body", "key_sequences", 0, 1]
    assert "vocab_size=1024" in item["msg"]


def test_row_19_a_10_mb_token_is_refused_by_the_per_token_limit(client: httpx.Client) -> None:
    body = {"sequences": [["short", "x" * 10_000_000]]}

    message = detail(client.post("/attention", json=body), 413)

    assert message == (
        "sequences.0.1 is a token of 10,000,000 characters, over the limit max_token_chars=1,024"
    )
    assert_healthy(client.base_url.__str__().rstrip("/"))


# -- row 4: a per-worker memory budget, 503 past it ----------------------------------------------


SLOW_BODY = {
    "sequences": [[index % 1024 for index in range(2048)]],
    "config": {"d_model": 2048, "num_heads": 4, "seed": 11},
    "output": {"attention": "none"},
}  # a computation of 1 to 5 s here


def slow_body() -> dict[str, Any]:
    return SLOW_BODY


def estimated_peak(body: dict[str, Any]) -> int:
    """The service's own estimate of a random-model request, its module already built."""
    request = AttentionRequest.model_validate(body)
    config = library_config(request)
    shape = request_shape(request, request_labels(request), config)
    return random_estimate(request, shape, config, JSON, module_cached=True).peak_bytes


def test_row_4_work_past_the_memory_budget_waits_for_none_and_gets_503(
    start_server: StartServer,
) -> None:
    budget = estimated_peak(SLOW_BODY) * 3 // 2  # room for one, not two
    env = {"ATTENTION_MEMORY_BUDGET_BYTES": str(budget), "ATTENTION_MAX_CONCURRENCY": "2"}
    with start_server(env) as budgeted, httpx.Client(base_url=budgeted.base_url, timeout=120) as c:
        assert c.post("/attention", json=slow_body()).status_code == 200  # builds the module
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: c.post("/attention", json=slow_body()), range(2)))

        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200, 503], [answer.text for answer in answers]
        refused = next(answer for answer in answers if answer.status_code == 503)
        assert f"memory_budget_bytes={budget:,}" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) >= 1
        assert memory(c)["reserved_bytes"] == 0
        assert_healthy(budgeted.base_url)


def test_row_4_a_request_larger_than_the_whole_budget_is_413(start_server: StartServer) -> None:
    env = {"ATTENTION_MEMORY_BUDGET_BYTES": str(100 * MiB)}
    with start_server(env) as budgeted:
        response = httpx.post(f"{budgeted.base_url}/attention", json=slow_body(), timeout=60)

        assert "over the limit memory_budget_bytes=104,857,600" in detail(response, 413)
        assert_healthy(budgeted.base_url)


# -- row 10: a computation past its deadline frees its slot within about a layer ----------------


def test_row_10_abandoned_computations_stop_at_the_next_layer(start_server: StartServer) -> None:
    env = {"ATTENTION_REQUEST_TIMEOUT_S": "3", "ATTENTION_MAX_CONCURRENCY": "2"}
    # 64 × 254 words: six layers of about a second each on two cores, far past 3 s
    heavy = {"model": MODEL, "text": [" ".join(["word"] * 254)] * 64,
             "output": {"attention": "none"}}  # fmt: skip
    with start_server(env) as limited, httpx.Client(base_url=limited.base_url, timeout=60) as c:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: c.post("/attention", json=heavy), range(2)))
        assert [answer.status_code for answer in answers] == [504, 504]

        # both slots and their memory come back (the library's tests show the stop happens
        # before the next layer); a small request is then answered
        small = answered_soon(c, {"model": MODEL, "text": "a short one"})

        assert small.status_code == 200, small.text
        assert released_soon(c)


def released_soon(client: httpx.Client) -> bool:
    """Whether every reservation is given back within 30 s (the threads have ended)."""
    deadline = time.monotonic() + 30
    while memory(client)["reserved_bytes"] != 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def answered_soon(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    """POST until an answer other than 504/429/503, for up to 30 s (a loaded machine)."""
    deadline = time.monotonic() + 30
    while True:
        response = client.post("/attention", json=body)
        if response.status_code not in (429, 503, 504) or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


# -- row 11: the pretrained path keeps, and counts, only what it returns -------------------------


def test_row_11_weights_not_returned_are_neither_kept_nor_counted(client: httpx.Client) -> None:
    # 32 texts of 256 WordPieces; this server's max_request_bytes is 512 MiB
    texts = [" ".join(["word"] * 254)] * 32
    plain = {"model": MODEL, "text": texts, "output": {"attention": "none"}}
    averaged = {"model": MODEL, "text": texts, "output": {"attention": "average"}}

    answered = client.post("/attention", json=plain)
    refused = detail(client.post("/attention", json=averaged), 413)

    # every layer's (32, 12, 256, 256) weights, 604 MB, kept only to be averaged
    assert answered.status_code == 200, answered.text
    assert answered.json()["results"][0]["attention"] is None
    assert "peak memory is estimated at" in refused
    assert "over the limit max_request_bytes=536,870,912" in refused
