"""The client every integration test talks through: httpx over TCP to the session's real server.

Its response hook fails the test on any 5xx, so "never a 500" is checked by every request the
integration tests make, not only by the tests that look for errors.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import RunningServer

CLIENT_TIMEOUT_S = 60.0


def _refuse_server_errors(response: httpx.Response) -> None:
    if response.status_code >= 500:
        response.read()
        raise AssertionError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:2000]}"
        )


def client_for(base_url: str) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        timeout=CLIENT_TIMEOUT_S,
        event_hooks={"response": [_refuse_server_errors]},
    )


@pytest.fixture(scope="session")
def client(live_server: RunningServer) -> Iterator[httpx.Client]:
    with client_for(live_server.base_url) as session_client:
        yield session_client
