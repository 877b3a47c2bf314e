"""The service's settings: one class, read from ATTENTION_* environment variables.

Every limit the service enforces lives here, so that operators find them in one table (README).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# attention.folders.files.DEFAULT_MAX_MODEL_BYTES, the library's default, written again here:
# importing `attention` imports torch, and uvicorn's parent process (app/__main__.py), which
# computes nothing, would hold ~240 MB for it (tests/app/test_startup_checks.py holds both equal)
DEFAULT_MAX_MODEL_BYTES = 3 * 1024**3 // 2

MiB = 1024 * 1024
GiB = 1024 * MiB
DEVICE_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATTENTION_", extra="ignore", frozen=True)

    # serving
    host: str = Field("127.0.0.1", description="Address the server binds to")
    port: int = Field(8000, ge=1, le=65535, description="Port the server listens on")
    workers: int = Field(
        2, ge=1, le=64, description="Server worker processes (2 measured best on 2 cores: "
        "docs/performance.md)",
    )  # fmt: skip
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="Server log level"
    )
    graceful_shutdown_s: float = Field(
        10.0, gt=0, description="Seconds in-flight requests get to finish after SIGTERM"
    )
    drain_delay_s: float = Field(
        0.0, ge=0, description="Seconds after SIGTERM during which the server still accepts "
        "requests while /readyz answers 503, for load balancers that route by readiness; "
        "part of graceful_shutdown_s",
    )  # fmt: skip

    # connections (408 or 503 past them, and the connection closes: docs/reliability.md)
    max_connections: int = Field(
        1000, ge=1, le=100_000, description="Open connections per worker; past it a new one "
        "closes the one waiting longest for its request's headers (408), or is answered 503 "
        "and closed when none is waiting",
    )  # fmt: skip
    header_timeout_s: float = Field(
        10.0, gt=0, le=600, description="Seconds a client has to send a request's line and "
        "headers, from its first byte (or the connection's opening); past it 408",
    )  # fmt: skip
    body_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="Seconds a client has to send a request's whole body, "
        "from the end of its headers; past it 408",
    )  # fmt: skip

    # compute
    device: str = Field("auto", description="'auto' (CUDA when present), 'cpu' or 'cuda[:N]'")
    torch_threads: int = Field(
        0, ge=0, le=256, description="torch intra-op threads per computation; 0 = the cores "
        "shared by all computations (workers × max_concurrency), at least 1",
    )  # fmt: skip
    max_concurrency: int = Field(
        2, ge=1, le=256, description="Computations run at once, per worker"
    )
    max_queue: int = Field(
        32, ge=0, le=10_000, description="Requests that may wait for a slot, per worker"
    )
    request_timeout_s: float = Field(30.0, gt=0, description="Deadline of one computation (504)")
    inline_max_bytes: int = Field(
        256 * 1024, ge=0, description="A random-model request whose whole estimated peak memory "
        "(computation and answer) is at most this size is computed on the event loop when a slot "
        "is free, without the hand-off to a thread (it costs more than such a computation); "
        "0 = never",
    )  # fmt: skip
    batch_wait_ms: float = Field(
        0.5, ge=0, le=100, description="Micro-batching: concurrent requests of one joinable "
        "form are computed in one pass, each answer bitwise what it would be alone (the random "
        "model: one sequence, same config and length, no mask, weights or steps; a pretrained "
        "encoder: same model and dtype, no steps, rows its measured rule admits); a group "
        "gathers while each turn of the event loop brings a newcomer, at most this long; a "
        "request with nobody beside it is not held; 0 = off (docs/performance.md)",
    )  # fmt: skip

    # memory, per worker (docs/reliability.md: the memory model)
    memory_budget_bytes: int = Field(
        4 * GiB, ge=16 * MiB, description="Memory all computations in flight may hold together, "
        "by their estimates; past it a request waits for none and gets 503 with Retry-After",
    )  # fmt: skip
    module_cache_bytes: int = Field(
        512 * MiB, ge=MiB, description="Seeded random-model modules kept (least recently used "
        "evicted); a module larger than this is refused (413)",
    )  # fmt: skip
    token_cache_bytes: int = Field(
        64 * MiB, ge=0, description="Hashed string-token vectors kept, shared by every module"
    )

    # limits (413 past them)
    max_body_bytes: int = Field(16 * MiB, ge=1024, description="Largest request body")
    max_tokens: int = Field(
        32_768, ge=1, description="Tokens per sequence (queries or keys); the estimate bounds "
        "what a request of that length may ask for (dense weights are refused long before)",
    )  # fmt: skip
    max_batch: int = Field(64, ge=1, description="Sequences per request")
    max_d_model: int = Field(2048, ge=1, description="Largest d_model (and kdim, vdim)")
    max_heads: int = Field(64, ge=1, description="Largest num_heads")
    max_request_bytes: int = Field(
        2 * GiB, ge=1, description="Largest estimated peak memory of one request: tensors "
        "computed and kept, the copies cut for the answer, the encoded answer, a new module",
    )  # fmt: skip
    max_response_bytes: int = Field(
        256 * MiB, ge=1, description="Largest estimated answer, in bytes of the chosen encoding"
    )
    max_text_chars: int = Field(
        200_000, ge=1, description="Characters of `text`, all strings together, checked before "
        "tokenizing",
    )  # fmt: skip
    max_token_chars: int = Field(
        1024, ge=1, description="Characters of one string token in `sequences` or `key_sequences`"
    )

    # access
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Comma-separated bearer keys; empty = no authentication"
    )
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Comma-separated origins allowed by CORS; empty = none"
    )

    # the pretrained model
    model_path: str | None = Field(
        None, description="A BERT-format folder to serve instead of the bundled all-MiniLM-L6-v2"
    )
    max_model_bytes: int = Field(
        DEFAULT_MAX_MODEL_BYTES, ge=1, description="Largest pretrained model, in bytes of "
        "parameters per copy (float32; a float64 copy takes twice as much, a bfloat16 one "
        "half), computed from config.json before anything is allocated: past it the model is "
        "not served",
    )  # fmt: skip

    # model folders, encoders and decoders (docs/models.md)
    models_dir: str | None = Field(
        None, description="A folder of model folders (encoders: BERT, RoBERTa, DistilBERT; "
        "decoders: GPT-2, Llama, Mistral, Qwen2), each served under its folder's name in lower "
        "case, loaded on first use",
    )  # fmt: skip
    models_memory_bytes: int = Field(
        DEFAULT_MAX_MODEL_BYTES, ge=1, description="Parameter bytes the models of "
        "ATTENTION_MODELS_DIR may hold loaded at once (float32); the least recently used is "
        "unloaded to make room, a larger model is not served",
    )  # fmt: skip
    max_new_tokens: int = Field(
        256, ge=1, description="Most tokens one request may generate (generate.max_new_tokens)"
    )
    max_context_tokens: int = Field(
        2048, ge=1, description="Most tokens a generating request may reach: its prompt plus "
        "generate.max_new_tokens",
    )  # fmt: skip

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        """'' is none at all; otherwise every comma-separated part must be there: an empty key
        (`","`, `"a,"`) would otherwise vanish, and with it, silently, authentication."""
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",")) if value else ()
        if isinstance(value, tuple | list) and "" in value:
            raise ValueError("must not hold an empty entry (two commas, or one at either end)")
        return value

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        if not DEVICE_NAME.fullmatch(value):
            raise ValueError("must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
        return value


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once; tests override the dependency or clear the cache."""
    return Settings()
