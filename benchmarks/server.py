"""The server under test, started with the command of `make serve`, and its resident memory."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from app.serving.settings import Settings
from tests.support.server import RunningServer, launch

Server = RunningServer


@contextmanager
def running_server(env: Mapping[str, str], log_dir: Path) -> Iterator[RunningServer]:
    """`python -m app` on a free loopback port, started by the tests' own launcher, with the
    workers that the environment asks for (the launcher's default of one is for the tests)."""
    workers = os.environ.get("ATTENTION_WORKERS", str(Settings.model_fields["workers"].default))
    server = launch({"ATTENTION_WORKERS": workers, **env}, log_dir)
    try:
        yield server
    finally:
        server.stop(timeout=30)


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
