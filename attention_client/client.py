"""AttentionClient: POST /attention from keyword arguments, on httpx.

Keywords go where they belong: request fields (`text`, `sequences`, `model`, `layers`, ...) at
the top, head configuration fields (`d_model`, `num_heads`, `causal`, ...) in `config`, answer
options (`steps`, `top_k`, `pool`, `heads`, `queries`, `dtype`, ...) in `output`; an unknown
keyword is a TypeError before anything is sent. Answers come as MessagePack, their arrays as
numpy arrays. A 429 or 503 is retried after its Retry-After (at most `retries` times, each wait
at most `max_wait_s`); any other error status raises a typed error carrying the detail.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import httpx
import ormsgpack

from attention_client.arrays import decode_arrays
from attention_client.errors import ClientError, error_for
from attention_client.frames import Frame, msgpack_frames

MSGPACK = "application/msgpack"
MSGPACK_SEQ = "application/vnd.msgpack-seq"  # a streamed answer's frames
REQUEST_FIELDS = frozenset({
    "sequences", "text", "embeddings", "key_sequences", "key_embeddings", "value_embeddings",
    "key_padding_mask", "attn_mask", "parameters", "model", "layers", "generate", "truncate",
})  # fmt: skip
CONFIG_FIELDS = frozenset({
    "d_model", "num_heads", "num_kv_heads", "kdim", "vdim", "bias", "add_bias_kv",
    "add_zero_attn", "positional_encoding", "causal", "window", "scale", "dropout",
    "max_positions", "rope_base", "vocab_size", "seed", "dtype",
})  # fmt: skip
OUTPUT_FIELDS = frozenset({
    "attention", "steps", "precision", "metrics", "embedding", "analysis", "heads", "queries",
    "top_k", "pool", "parameters",
})  # fmt: skip
# `dtype` is the computation's (config.dtype); the answer arrays' type is `array_dtype`
ARRAY_DTYPE = "array_dtype"
RETRIED = (429, 503)
DEFAULT_WAIT_S = 1.0


def build_request(**fields: Any) -> dict[str, Any]:
    """The JSON body of POST /attention from keyword arguments; `queries=range(a, b)` becomes
    {"start": a, "stop": b}. Raises TypeError for a keyword the service does not know."""
    body: dict[str, Any] = {}
    config: dict[str, Any] = dict(fields.pop("config", None) or {})
    output: dict[str, Any] = dict(fields.pop("output", None) or {})
    for name, value in fields.items():
        if value is None and name not in CONFIG_FIELDS:
            continue  # an absent request field or option: the service's default
        if name in REQUEST_FIELDS:
            body[name] = value
        elif name in CONFIG_FIELDS:
            config[name] = value
        elif name in OUTPUT_FIELDS:
            output[name] = _query_range(value) if name == "queries" else value
        elif name == ARRAY_DTYPE:
            output["dtype"] = value
        else:
            raise TypeError(f"attention() got an unexpected keyword argument {name!r}")
    if config:
        body["config"] = config
    if output:
        body["output"] = output
    return body


def _query_range(value: Any) -> Any:
    if isinstance(value, range):
        if value.step != 1:
            raise ValueError(f"queries={value!r}: a range of step 1, or a list of positions")
        return {"start": value.start, "stop": value.stop}
    return list(value) if isinstance(value, tuple) else value


def retry_after_seconds(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


class AttentionClient:
    """One service at `base_url`. Use it as a context manager, or call close()."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        retries: int = 3,
        max_wait_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout_s, transport=transport
        )
        self.retries, self.max_wait_s, self.sleep = retries, max_wait_s, sleep

    def __enter__(self) -> AttentionClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def attention(self, **fields: Any) -> dict[str, Any]:
        """POST /attention with `build_request(**fields)`; the answer with numpy arrays."""
        body = build_request(**fields)
        response = self._send("POST", "/attention", json=body, headers={"Accept": MSGPACK})
        answer: dict[str, Any] = decode_arrays(ormsgpack.unpackb(response.content))
        return answer

    def stream(self, **fields: Any) -> Iterator[Frame]:
        """POST /attention streamed, the same keywords as `attention`: a `Head`, then a `Layer`
        as soon as the service has computed each layer, then an `End` (arrays as numpy).
        `attention_client.frames.assemble(frames)` puts them together into `attention`'s answer.
        An error before the stream is raised as `attention` raises it (after the retries); an
        error frame in it (504: past the deadline) as the same typed error. Leaving the loop
        early closes the connection, and the service stops computing."""
        body = build_request(**fields)
        headers = {"Accept": MSGPACK_SEQ}
        for attempt in range(self.retries + 1):
            try:
                with self.http.stream("POST", "/attention", json=body, headers=headers) as response:
                    if response.status_code < 400:
                        yield from msgpack_frames(response.iter_bytes())
                        return
                    response.read()
                    self._refuse_or_wait(response, attempt)
            except httpx.HTTPError as error:
                raise ClientError(f"POST /attention (streamed): {error}") from error
            except ValueError as error:  # cut short, or not the service's frames
                raise ClientError(f"POST /attention (streamed): {error}") from error
        raise AssertionError("unreachable: the last attempt returns or raises")

    def models(self) -> list[dict[str, Any]]:
        """GET /models: the served models and their limits."""
        models: list[dict[str, Any]] = self._send("GET", "/models").json()["models"]
        return models

    def steps(self) -> list[dict[str, Any]]:
        """GET /steps: the step registry (names, layouts, shapes)."""
        steps: list[dict[str, Any]] = self._send("GET", "/steps").json()
        return steps

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retries + 1):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.HTTPError as error:
                raise ClientError(f"{method} {path}: {error}") from error
            if response.status_code < 400:
                return response
            self._refuse_or_wait(response, attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _refuse_or_wait(self, response: httpx.Response, attempt: int) -> None:
        """An error answer: wait before the next attempt (429, 503), or raise it."""
        wait = retry_after_seconds(response.headers.get("retry-after"))
        if response.status_code in RETRIED and attempt < self.retries:
            self.sleep(min(self.max_wait_s, DEFAULT_WAIT_S if wait is None else wait))
            return
        raise _error(response, wait)


def _error(response: httpx.Response, retry_after: float | None) -> ClientError:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    return error_for(response.status_code, detail, retry_after)
