"""nginx, with compose's configuration file, in front of two real replicas on loopback.

The replicas are `python -m app` (tests/support/server.py), the proxy is Debian's nginx running
deploy/nginx/templates/attention.conf.template with only its upstream servers and listen
address rendered for loopback (tests/deploy/nginx.py). Which replica answered is read from each
replica's own access log: every request carries a unique query string.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.deploy.files import dockerfile_healthcheck
from tests.deploy.nginx import RunningProxy, find_nginx, running_proxy
from tests.support.server import RunningServer, free_port, launch

pytestmark = pytest.mark.deploy

IN_CI = os.environ.get("CI") == "true"
API_KEY = "deploy-test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MAX_TOKENS = 16
REPLICA_ENV = {
    "ATTENTION_API_KEYS": API_KEY,
    # a low token limit, to get the service's own 413 with a small body
    "ATTENTION_MAX_TOKENS": str(MAX_TOKENS),
    "PYTHONUNBUFFERED": "1",
}
MiB = 1024 * 1024
SMALL_REQUEST = {
    "sequences": [["the", "proxy", "passes", "this", "on"]],
    "config": {"d_model": 16, "num_heads": 2, "seed": 3},
}


@pytest.fixture(scope="module")
def nginx() -> str:
    found = find_nginx()
    if found is None:
        reason = (
            "nginx not found: `make system-deps` installs Debian's nginx-light "
            "(needs root and apt-get)"
        )
        if IN_CI:
            pytest.fail(f"{reason}; CI=true, so this is a failure, not a skip")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RunningServer]]:
    """Two replicas, started side by side (each takes seconds to import torch)."""
    log_dir = tmp_path_factory.mktemp("replicas")
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(launch, REPLICA_ENV, log_dir) for _ in range(2)]
    servers = [future.result() for future in futures if future.exception() is None]
    errors = [error for future in futures if (error := future.exception()) is not None]
    try:
        if errors:
            raise errors[0]
        yield servers
    finally:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(RunningServer.stop, servers))


@pytest.fixture(scope="module")
def proxy(
    nginx: str, replicas: list[RunningServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningProxy]:
    upstreams = [f"127.0.0.1:{server.port}" for server in replicas]
    with running_proxy(nginx, upstreams, tmp_path_factory.mktemp("nginx")) as running:
        yield running


@pytest.fixture
def client(proxy: RunningProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.base_url, headers=AUTH, timeout=30.0) as client:
        yield client


def probe() -> str:
    return uuid.uuid4().hex


def requests_logged(server: RunningServer, marker: str) -> int:
    """How many requests whose path holds `marker` this replica's access log shows."""
    return sum(1 for line in server.log().splitlines() if marker in line and '"' in line)


def direct(server: RunningServer, method: str, path: str, **kwargs: object) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30.0) as client:
        return client.request(method, path, **kwargs)  # type: ignore[arg-type]


def padded_json(document: object, size: int) -> bytes:
    """`document` as JSON, padded with trailing whitespace to exactly `size` bytes."""
    body = json.dumps(document).encode()
    return body + b" " * (size - len(body))


# -- balancing ----------------------------------------------------------------------------------


def test_requests_are_spread_over_both_replicas(
    client: httpx.Client, replicas: list[RunningServer]
) -> None:
    marker = probe()
    for i in range(10):
        response = client.get(f"/healthz?probe={marker}-{i}")
        assert response.status_code == 200
    counts = [requests_logged(server, marker) for server in replicas]
    assert sum(counts) == 10, f"each request reaches exactly one replica: {counts}"
    assert all(count > 0 for count in counts), f"one replica got nothing: {counts}"


def test_a_replica_that_is_down_is_skipped(
    nginx: str, replicas: list[RunningServer], tmp_path: Path
) -> None:
    """A replica stopping or restarting refuses connections: nginx tries the next one."""
    live = replicas[0]
    dead = f"127.0.0.1:{free_port()}"
    with running_proxy(nginx, [dead, f"127.0.0.1:{live.port}"], tmp_path / "nginx") as proxy:
        marker = probe()
        with httpx.Client(base_url=proxy.base_url, headers=AUTH, timeout=30.0) as client:
            statuses = [client.get(f"/info?probe={marker}-{i}").status_code for i in range(6)]
        assert statuses == [200] * 6
        assert requests_logged(live, marker) == 6


# -- what is reached through the proxy ----------------------------------------------------------


def test_the_explorer_page_and_its_assets_come_through_the_proxy(
    client: httpx.Client, replicas: list[RunningServer]
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.content == direct(replicas[0], "GET", "/").content
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert assets, "the page links no /static/ asset"
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert response.content == direct(replicas[1], "GET", asset).content


def test_attention_through_the_proxy_gives_a_replicas_numbers(
    client: httpx.Client, replicas: list[RunningServer]
) -> None:
    proxied = client.post("/attention", json=SMALL_REQUEST)
    assert proxied.status_code == 200, proxied.text
    reference = direct(replicas[0], "POST", "/attention", json=SMALL_REQUEST)
    assert proxied.json()["results"] == reference.json()["results"]
    assert proxied.json()["config"] == reference.json()["config"]


def test_authorization_reaches_the_replicas(
    client: httpx.Client, replicas: list[RunningServer], proxy: RunningProxy
) -> None:
    """A replica refuses a request without the key (401) and takes it with the key: through
    the proxy, the same two answers, so the header got through."""
    with httpx.Client(base_url=replicas[0].base_url, timeout=30.0) as anonymous:
        direct_without = anonymous.post("/attention", json=SMALL_REQUEST)
    if direct_without.status_code != 401:
        pytest.skip(
            f"the service answers {direct_without.status_code}, not 401, without the key "
            "(ATTENTION_API_KEYS not enforced): nothing to tell the header apart by"
        )
    with httpx.Client(base_url=proxy.base_url, timeout=30.0) as anonymous:
        proxied_without = anonymous.post("/attention", json=SMALL_REQUEST)
    assert proxied_without.status_code == 401
    assert proxied_without.content == direct_without.content
    assert client.post("/attention", json=SMALL_REQUEST).status_code == 200


def test_the_client_address_is_forwarded(
    client: httpx.Client, replicas: list[RunningServer]
) -> None:
    """X-Forwarded-For reaches uvicorn, which logs the client nginx names (a documentation
    address, in a header only), not the proxy's own address."""
    marker = probe()
    client.get(f"/healthz?probe={marker}", headers={"X-Forwarded-For": "192.0.2.7"})
    lines = [line for server in replicas for line in server.log().splitlines() if marker in line]
    assert len(lines) == 1
    assert "192.0.2.7" in lines[0]


# -- bodies and errors --------------------------------------------------------------------------


def test_a_body_over_16_mib_is_answered_413_in_json_by_the_proxy(
    client: httpx.Client, replicas: list[RunningServer]
) -> None:
    marker = probe()
    body = padded_json(SMALL_REQUEST, 16 * MiB + 1)
    response = client.post(
        f"/attention?probe={marker}", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["detail"], str)
    assert [requests_logged(server, marker) for server in replicas] == [0, 0]


def test_a_body_of_exactly_16_mib_passes_the_proxy_and_the_service(client: httpx.Client) -> None:
    """The proxy's limit is the service's: the largest body one accepts, the other does too."""
    body = padded_json(SMALL_REQUEST, 16 * MiB)
    response = client.post("/attention", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


def test_the_services_own_413_passes_through_unchanged(
    client: httpx.Client, replicas: list[RunningServer]
) -> None:
    too_long = {**SMALL_REQUEST, "sequences": [["token"] * (MAX_TOKENS + 1)]}
    proxied = client.post("/attention", json=too_long)
    reference = direct(replicas[0], "POST", "/attention", json=too_long)
    assert reference.status_code == 413
    assert proxied.status_code == 413
    assert proxied.headers["content-type"] == reference.headers["content-type"]
    assert proxied.content == reference.content


def test_an_unreachable_service_is_answered_502_in_json(nginx: str, tmp_path: Path) -> None:
    with running_proxy(nginx, [f"127.0.0.1:{free_port()}"], tmp_path / "nginx") as proxy:
        response = httpx.get(f"{proxy.base_url}/readyz", timeout=10.0)
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["detail"], str)


# -- requests nginx refuses itself: JSON, never its HTML pages ------------------------------------


def raw_exchange(base_url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` as bytes (httpx will not write a malformed one) and read one answer
    with a Content-Length: (status, headers with lower-case names, body)."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := connection.recv(65536)):
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        while len(body) < int(headers["content-length"]) and (chunk := connection.recv(65536)):
            body += chunk
    return int(status_line.split()[1]), headers, body


def assert_json_detail(status: int, headers: dict[str, str], body: bytes, expected: int) -> str:
    assert status == expected, body
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    detail = json.loads(body)["detail"]
    assert isinstance(detail, str)
    assert "nginx" not in body.decode().lower()
    return detail


MALFORMED = {
    "content-length-with-transfer-encoding": (
        b"POST /attention HTTP/1.1\r\nHost: proxy\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "a-100-kb-header": (
        b"GET /healthz HTTP/1.1\r\nHost: proxy\r\nX-Padding: " + b"a" * 100_000 + b"\r\n\r\n",
        400,
    ),
    "a-100-kb-request-line": (
        b"GET /healthz?" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: proxy\r\n\r\n",
        414,
    ),
    "an-invalid-method": (b"get /healthz HTTP/1.1\r\nHost: proxy\r\n\r\n", 400),
    "trace": (b"TRACE /healthz HTTP/1.1\r\nHost: proxy\r\n\r\n", 405),
    "an-unknown-transfer-encoding": (
        b"POST /attention HTTP/1.1\r\nHost: proxy\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    ),
    "no-host-header": (b"GET /healthz HTTP/1.1\r\n\r\n", 400),
    "not-http": (b"hello\r\n\r\n", 400),
    "http-2-over-plain-text": (b"GET /healthz HTTP/2.0\r\nHost: proxy\r\n\r\n", 505),
    "the-error-page-itself": (b"GET /.proxy-error HTTP/1.1\r\nHost: proxy\r\n\r\n", 404),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_request_nginx_refuses_gets_a_json_detail(
    case: str, proxy: RunningProxy, replicas: list[RunningServer]
) -> None:
    request, expected = MALFORMED[case]
    marker = probe()
    request = request.replace(b"/healthz", f"/healthz?probe={marker}".encode(), 1)
    assert_json_detail(*raw_exchange(proxy.base_url, request), expected)
    assert [requests_logged(server, marker) for server in replicas] == [0, 0]


def test_a_header_too_large_is_told_apart_from_other_bad_requests(proxy: RunningProxy) -> None:
    too_large, _ = MALFORMED["a-100-kb-header"]
    malformed, _ = MALFORMED["content-length-with-transfer-encoding"]
    detail = assert_json_detail(*raw_exchange(proxy.base_url, too_large), 400)
    assert "header" in detail
    assert "8 KiB" in detail
    assert detail != assert_json_detail(*raw_exchange(proxy.base_url, malformed), 400)


def test_an_unknown_method_nginx_passes_on_gets_the_services_json_answer(
    proxy: RunningProxy, replicas: list[RunningServer]
) -> None:
    """nginx passes any well-formed method on; the service answers it (405, JSON)."""
    request = b"PURGE /healthz HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n"
    proxied = raw_exchange(proxy.base_url, request)
    reference = raw_exchange(replicas[0].base_url, request)
    assert proxied[0] == reference[0] == 405
    assert proxied[1]["content-type"] == reference[1]["content-type"] == "application/json"
    assert proxied[2] == reference[2]


# -- the image's HEALTHCHECK command, run as it is ----------------------------------------------


def run_healthcheck(port: int) -> int:
    _, command = dockerfile_healthcheck()
    assert command[0] == "python"
    env = {**os.environ, "ATTENTION_PORT": str(port)}
    return subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30, check=False
    ).returncode


def test_the_healthcheck_command_passes_on_a_ready_replica(replicas: list[RunningServer]) -> None:
    assert run_healthcheck(replicas[0].port) == 0


def test_the_healthcheck_command_fails_where_nothing_listens() -> None:
    assert run_healthcheck(free_port()) != 0
