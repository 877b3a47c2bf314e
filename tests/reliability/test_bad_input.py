"""Bad input, one row each: the status, the message naming the field, and a healthy server after.

Error bodies have the documented shapes: {"detail": [{"loc", "msg", "type"}, ...]} for 422,
{"detail": "..."} for every other status.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import assert_healthy
from tests.support.server import RunningServer

pytestmark = pytest.mark.integration

NAN, INF = float("nan"), float("inf")
JSON = {"content-type": "application/json"}
D = 64  # the default d_model, with 4 heads


def raw(body: Any) -> bytes:
    """Python's json writes NaN, Infinity and -Infinity tokens, which JSON does not have."""
    return json.dumps(body).encode()


def parameters(**changes: Any) -> dict[str, Any]:
    """A torch.nn.MultiheadAttention(64, 4) state dict as nested lists, with changes."""
    state: dict[str, Any] = {
        "in_proj_weight": [[0.01] * D for _ in range(3 * D)],
        "in_proj_bias": [0.0] * (3 * D),
        "out_proj.weight": [[0.01] * D for _ in range(D)],
        "out_proj.bias": [0.0] * D,
    }
    state.update(changes)
    return {key: value for key, value in state.items() if value is not None}


def nested(depth: int) -> bytes:
    return b'{"text": ' + b"[" * depth + b"]" * depth + b"}"


def ten_megabytes_of_embeddings() -> bytes:
    """2,000 vectors of 640 numbers (about 12 MB), for a module whose d_model is 64."""
    row = b"[" + b",".join([b"0.1234567"] * 640) + b"]"
    return b'{"embeddings": [[' + b",".join([row] * 2000) + b']], "config": {"d_model": 64}}'


@dataclass(frozen=True)
class Row:
    name: str
    body: bytes
    status: int
    field: list[str | int] | None  # the 422 item's loc, or None for a message body
    message: str
    headers: dict[str, str] | None = None


def row(
    name: str, body: Any, status: int, field: list[str | int] | None, message: str, **headers: str
) -> Row:
    return Row(
        name,
        body if isinstance(body, bytes) else raw(body),
        status,
        field,
        message,
        headers or None,
    )


TEXT = {"text": "The man who passes the sentence"}
ROWS = [
    row("invalid JSON", b'{"text": "a b"', 400, None, "the body is not valid JSON"),
    row("empty body", b"", 400, None, "the body is empty"),
    row(
        "text/plain",
        b'{"text": "a b"}',
        415,
        None,
        "content-type 'text/plain' is not supported",
        **{"content-type": "text/plain"},
    ),
    row(
        "form",
        b"text=a",
        415,
        None,
        "'application/x-www-form-urlencoded' is not supported",
        **{"content-type": "application/x-www-form-urlencoded"},
    ),
    row(
        "unknown field",
        {**TEXT, "colour": "red"},
        422,
        ["body", "colour"],
        "Extra inputs are not permitted",
    ),
    row(
        "unknown config field",
        {**TEXT, "config": {"d_modle": 64}},
        422,
        ["body", "config", "d_modle"],
        "Extra inputs are not permitted",
    ),
    row(
        "no input",
        {"config": {}},
        422,
        ["body"],
        "give exactly one of sequences, text or embeddings",
    ),
    row(
        "NaN embedding",
        {"embeddings": [[[NAN] * D]]},
        422,
        ["body", "embeddings", 0, 0, 0],
        "finite number",
    ),
    row(
        "Infinity embedding",
        {"embeddings": [[[0.0] * (D - 1) + [INF]]]},
        422,
        ["body", "embeddings", 0, 0, D - 1],
        "finite number",
    ),
    row(
        "-Infinity key embedding",
        {"embeddings": [[[0.0] * D]], "key_embeddings": [[[-INF] * D]]},
        422,
        ["body", "key_embeddings", 0, 0, 0],
        "finite number",
    ),
    row(
        "NaN float mask",
        {**TEXT, "attn_mask": [[0.0] * 6, [NAN] + [0.0] * 5] + [[0.0] * 6] * 4},
        422,
        ["body", "attn_mask"],
        "finite number",
    ),
    row(
        "NaN parameter",
        {**TEXT, "parameters": parameters(in_proj_bias=[NAN] * (3 * D))},
        422,
        ["body", "parameters", "in_proj_bias"],
        "NaN or infinite",
    ),
    row(
        "Infinity parameter",
        {**TEXT, "parameters": parameters(**{"out_proj.weight": [[INF] * D] * D})},
        422,
        ["body", "parameters", "out_proj.weight"],
        "NaN or infinite",
    ),
    row(
        "NaN scale",
        {**TEXT, "config": {"scale": NAN}},
        422,
        ["body", "config", "scale"],
        "finite number",
    ),
    row(
        "Infinity rope base",
        {**TEXT, "config": {"rope_base": INF}},
        422,
        ["body", "config", "rope_base"],
        "finite number",
    ),
    row(
        "empty sequence",
        {"sequences": [[]]},
        422,
        ["body", "sequences", 0],
        "sequences[0] has no tokens",
    ),
    row("no sequences", {"sequences": []}, 422, ["body", "sequences"], "sequences is empty"),
    row("empty text", {"text": ""}, 422, ["body", "text", 0], "text[0] has no tokens"),
    row(
        "zero heads",
        {**TEXT, "config": {"num_heads": 0}},
        422,
        ["body", "config", "num_heads"],
        "greater than or equal to 1",
    ),
    row(
        "heads not dividing d_model",
        {**TEXT, "config": {"d_model": 64, "num_heads": 5}},
        422,
        ["body", "config", "num_heads"],
        "d_model=64 is not divisible by num_heads=5",
    ),
    row(
        "kv heads not dividing heads",
        {**TEXT, "config": {"num_heads": 4, "num_kv_heads": 3}},
        422,
        ["body", "config", "num_kv_heads"],
        "num_kv_heads=3 does not divide num_heads=4",
    ),
    row(
        "attn_mask of the wrong shape",
        {**TEXT, "attn_mask": [[True]]},
        422,
        ["body", "attn_mask"],
        "attn_mask has shape (1, 1); expected (6, 6)",
    ),
    row(
        "key_padding_mask of the wrong shape",
        {**TEXT, "key_padding_mask": [[True]]},
        422,
        ["body", "key_padding_mask", 0],
        "key_padding_mask[0] has 1 entries",
    ),
    row(
        "parameter of the wrong shape",
        {**TEXT, "parameters": parameters(in_proj_bias=[0.0] * 10)},
        422,
        ["body", "parameters", "in_proj_bias"],
        "has shape (10,); expected (192,)",
    ),
    row(
        "parameter missing",
        {**TEXT, "parameters": parameters(**{"out_proj.bias": None})},
        422,
        ["body", "parameters", "out_proj.bias"],
        "missing out_proj.bias",
    ),
    row(
        "token id = vocab_size",
        {"sequences": [[0, 1024]]},
        422,
        ["body", "sequences", 0, 1],
        "outside [0, vocab_size=1024)",
    ),
    row(
        "negative token id",
        {"sequences": [[-1]]},
        422,
        ["body", "sequences", 0, 0],
        "outside [0, vocab_size=1024)",
    ),
    row(
        "10 MB of embeddings of the wrong width",
        ten_megabytes_of_embeddings(),
        422,
        ["body", "embeddings"],
        "640",
    ),
    row(
        "100 000 tokens",
        {"sequences": [["word"] * 100_000]},
        413,
        None,
        "tokens per sequence is 100,000, over the limit max_tokens=32,768",
    ),
    row("JSON nested 10 000 deep", nested(10_000), 400, None, "recursion limit exceeded"),
    row(
        "a batch needing 50 GB of attention",
        {
            "sequences": [list(range(2048))] * 48,
            "config": {"d_model": 2048, "num_heads": 64, "vocab_size": 2048},
        },
        413,
        None,
        "B=48 × H=64 × L=2048 × S=2048",
    ),
]


@pytest.mark.parametrize("case", ROWS, ids=[case.name for case in ROWS])
def test_bad_input_gets_a_clear_4xx_and_the_server_stays_healthy(
    live_server: RunningServer, case: Row
) -> None:
    response = httpx.post(
        f"{live_server.base_url}/attention",
        content=case.body,
        headers=case.headers or JSON,
        timeout=60,
    )

    assert response.status_code == case.status, response.text[:2000]
    detail = response.json()["detail"]
    if case.status == 422:
        assert isinstance(detail, list)
        for item in detail:
            assert set(item) == {"loc", "msg", "type"}
            assert item["loc"][0] == "body"
        field = case.field or []
        named = [item for item in detail if item["loc"][: len(field)] == field]
        assert any(case.message in item["msg"] for item in named), detail
    else:
        assert isinstance(detail, str)
        assert case.message in detail
    assert_healthy(live_server.base_url)


def test_the_50_gb_batch_is_refused_with_its_estimate(live_server: RunningServer) -> None:
    (case,) = [case for case in ROWS if case.name.startswith("a batch needing 50 GB")]
    detail = httpx.post(
        f"{live_server.base_url}/attention", content=case.body, headers=JSON, timeout=60
    ).json()["detail"]

    # 48 × 64 × 2048 × 2048 float32 weights alone are 51.5 GB; as JSON up to 15 bytes a number
    answer = int(re.search(r"answer is estimated at ([\d,]+) bytes", detail)[1].replace(",", ""))  # type: ignore[index]
    assert answer >= 48 * 64 * 2048 * 2048 * 15
    assert "over the limit max_response_bytes=268,435,456" in detail
