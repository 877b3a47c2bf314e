"""The server under test, started with the command of `make serve`, and its resident memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVER_COMMAND = ("python", "-m", "app")  # `make serve`: $(BIN)/python -m app


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@contextmanager
def running_server(env: Mapping[str, str], log_dir: Path) -> Iterator[Server]:
    """`python -m app` (the venv's python, as `make serve`) on a free loopback port."""
    port = free_port()
    full_env = {
        **os.environ,
        "ATTENTION_HOST": "127.0.0.1",
        "ATTENTION_PORT": str(port),
        **env,
    }
    log_path = log_dir / f"bench-server-{port}.log"
    command = [sys.executable, *SERVER_COMMAND[1:]]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(process, "127.0.0.1", port, log_path)
    try:
        wait_ready(server)
        yield server
    finally:
        server.stop()


def wait_ready(server: Server, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited before it was ready:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server was not ready within {timeout:g} s:\n{server.log()}")


# -- resident memory --------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn's workers)."""
    found = [pid]
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += process_tree(int(child))
    return found


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_bytes(pid: int) -> int:
    return sum(_status_kib(each, "VmRSS:") for each in process_tree(pid)) * 1024


class PeakMemory:
    """The peak resident memory of a process tree over a span of time.

    The kernel's own high-water mark (VmHWM, reset through /proc/PID/clear_refs) catches every
    peak; where it cannot be reset, a thread samples VmRSS every few milliseconds instead.
    Both are taken and the larger reported.
    """

    def __init__(self, pid: int, interval_s: float = 0.005) -> None:
        self.pid, self.interval_s = pid, interval_s
        self.sampled = 0
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self.hwm_reset = all(_reset_hwm(each) for each in process_tree(self.pid))
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.sampled = max(self.sampled, rss_bytes(self.pid))
            self._stop.wait(self.interval_s)

    @property
    def peak(self) -> int:
        if not self.hwm_reset:
            return self.sampled
        hwm = sum(_status_kib(each, "VmHWM:") for each in process_tree(self.pid)) * 1024
        return max(hwm, self.sampled)


def _reset_hwm(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True
