"""Start the real server in a subprocess, exactly as `make serve` and the container do.

`SERVER_COMMAND` is the one command line; the Dockerfile's CMD is checked against it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_COMMAND: tuple[str, ...] = ("python", "-m", "app")
"""What `make serve`, the Dockerfile's CMD and every test start (python = the venv's)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    base_url: str
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def wait_ready(base_url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {base_url} was not ready within {timeout} s")


def launch(env: Mapping[str, str] | None = None, log_dir: Path | None = None) -> RunningServer:
    """Start `python -m app` on a free loopback port and wait for /readyz."""
    port = free_port()
    full_env = {
        **os.environ,
        "ATTENTION_HOST": "127.0.0.1",
        "ATTENTION_PORT": str(port),
        "ATTENTION_WORKERS": "1",
        **(env or {}),
    }
    log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    log_path = log_dir / f"server-{port}.log"
    command = [sys.executable, *SERVER_COMMAND[1:]]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{full_env['ATTENTION_PORT']}"
    server = RunningServer(process, base_url, int(full_env["ATTENTION_PORT"]), log_path)
    try:
        wait_ready(base_url, process)
    except RuntimeError as error:
        server.stop(signal.SIGKILL)
        raise RuntimeError(f"{error}\n--- server log ---\n{server.log()}") from None
    return server


@contextmanager
def running_server(
    env: Mapping[str, str] | None = None, log_dir: Path | None = None
) -> Iterator[RunningServer]:
    server = launch(env, log_dir)
    try:
        yield server
    finally:
        server.stop()
