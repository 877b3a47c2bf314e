"""The benchmark's cases: one request body each, the same in-process and over HTTP."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON = "application/json"
MSGPACK = "application/msgpack"

# distinct words, so that each token is hashed once per module and then found in its cache
WORDS = [f"w{index}" for index in range(4096)]


@dataclass(frozen=True)
class Case:
    name: str
    batch: int
    tokens: int
    d_model: int
    heads: int
    attention: str = "per_head"
    steps: str | tuple[str, ...] = ()
    accept: str = JSON
    about: str = ""
    server_env: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        output: dict[str, Any] = {"attention": self.attention}
        if self.steps:
            output["steps"] = self.steps if isinstance(self.steps, str) else list(self.steps)
        sequences = [WORDS[: self.tokens] for _ in range(self.batch)]
        return {
            "sequences": sequences,
            "config": {"d_model": self.d_model, "num_heads": self.heads, "seed": 0},
            "output": output,
        }

    def body(self) -> bytes:
        return json.dumps(self.payload(), separators=(",", ":")).encode()

    @property
    def shape(self) -> str:
        return f"{self.batch}×{self.tokens}, d={self.d_model}, H={self.heads}"


SMALL = Case("small", 1, 16, 64, 4, about="1×16 tokens, d_model 64, 4 heads, per-head weights")
LARGE = Case("large", 1, 256, 256, 8, about="1×256 tokens, d_model 256, 8 heads, per-head weights")
CASES: dict[str, Case] = {
    case.name: case
    for case in (
        SMALL,
        LARGE,
        Case("batch", 8, 128, 256, 8, about="8×128 tokens, d_model 256, 8 heads, per-head"),
        Case("steps", 1, 16, 64, 4, steps="all", about="small, with every step"),
        Case("msgpack", 1, 256, 256, 8, accept=MSGPACK, about="large, as MessagePack"),
    )
}
DEFAULT_CASES = tuple(CASES)

# the GPU case: 8·2048² weights, 34 M numbers (≈ 420 MB of JSON); over the default answer limit
XL_ENV = {"ATTENTION_MAX_RESPONSE_BYTES": str(2**30), "ATTENTION_REQUEST_TIMEOUT_S": "120"}
GPU_CASES: dict[str, Case] = {
    case.name: case
    for case in (
        Case("xl", 1, 2048, 512, 8, about="1×2048 tokens, d_model 512, 8 heads, per-head",
             server_env=XL_ENV),
        Case("xl-msgpack", 1, 2048, 512, 8, accept=MSGPACK, about="xl, as MessagePack",
             server_env=XL_ENV),
    )
}  # fmt: skip
ALL_CASES = {**CASES, **GPU_CASES}


def select(names: str | None, gpu: bool) -> list[Case]:
    """The cases named (comma-separated), or the defaults plus, with `gpu`, the GPU cases."""
    if names:
        unknown = [name for name in names.split(",") if name.strip() not in ALL_CASES]
        if unknown:
            raise SystemExit(f"unknown case(s) {unknown}; known: {', '.join(ALL_CASES)}")
        return [ALL_CASES[name.strip()] for name in names.split(",")]
    return [*CASES.values(), *(GPU_CASES.values() if gpu else ())]


def server_env(cases: list[Case]) -> dict[str, str]:
    """One server serves every case: the union of what the cases need."""
    env: dict[str, str] = {}
    for case in cases:
        env.update(case.server_env)
    return env
