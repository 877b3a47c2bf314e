"""Soak: the bounded-cost attacks replayed for minutes against a real server, memory watched.

    python -m benchmarks.soak                    start `python -m app` (2 workers), 180 s
    python -m benchmarks.soak --duration 60 --url http://127.0.0.1:8000   a running server

Every attacker is a thread looping one attack (rows of the bounded-cost issue): new seeds on a
d_model 2048 module (row 1), unique key tokens (2), a batch whose every step is gigabytes (3),
a 16 MB text (5), long pretrained batches (10, 11), and sockets that dribble their headers
(12). Meanwhile the probes are timed and the resident memory of every server process is sampled.
The probe runs in a process of its own: in the attackers' process it waited for their GIL
(serialising a 16 MB body holds it for tens of milliseconds), which timed this client, not the
server. Bodies are encoded with orjson for the same reason.
The report gives each process's RSS before, at its peak and after, the statuses per attack, and
the slowest probe; docs/reliability.md records a run. Only loopback addresses are used, and
every loop stops by itself at the end of the run.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import orjson

MiB = 2**20
JSON = {"content-type": "application/json"}
PROBE_INTERVAL_S = 0.25
MODEL = "all-minilm-l6-v2"
SLOW_SOCKETS = 200


def attacks() -> dict[str, Callable[[int], dict[str, Any]]]:
    """Each attack's body for its n-th request."""
    long_text = [" ".join(["word"] * 254)] * 64
    return {
        "row 1: new module seeds": lambda n: {
            "text": "a",
            "config": {
                "d_model": 2048,
                "num_heads": 1,
                "vocab_size": 23000,
                "seed": n,
                "dtype": "float64",
            },
            "output": {"attention": "none"},
        },
        "row 2: unique key tokens": lambda n: {
            "sequences": [["q"]] * 8,
            "key_sequences": [[f"s{n}-{r}-{i}" for i in range(2048)] for r in range(8)],
            "config": {"d_model": 2048, "num_heads": 1, "seed": n},
        },
        "row 3: every step of 64 × 2048": lambda n: {
            "sequences": [list(range(2048))] * 64,
            "key_sequences": [[0]] * 64,
            "config": {"d_model": 2048, "num_heads": 1},
            "output": {"attention": "none", "steps": "all"},
        },
        "row 5: 16 MB of text": lambda n: {"model": MODEL, "text": "word " * 3_200_000},
        "row 10/11: 64 × 256 pretrained": lambda n: {
            "model": MODEL,
            "text": long_text,
            "output": {"attention": "none"},
        },
    }


class Soak:
    def __init__(self, url: str, duration_s: float, server_pid: int | None) -> None:
        self.url, self.server_pid = url, server_pid
        self.stop_at = time.monotonic() + duration_s
        self.statuses: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.probe_ms: list[float] = []
        self.rss: dict[int, list[int]] = collections.defaultdict(list)
        self.lock = threading.Lock()

    def running(self) -> bool:
        return time.monotonic() < self.stop_at

    def attack(self, name: str, body: Callable[[int], dict[str, Any]]) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as client:
            n = 0
            while self.running():
                n += 1
                try:
                    answer = client.post("/attention", content=orjson.dumps(body(n)), headers=JSON)
                    status = str(answer.status_code)
                except httpx.HTTPError as error:
                    status = type(error).__name__
                with self.lock:
                    self.statuses[name][status] += 1

    def dribble(self) -> None:
        """Row 12: sockets that send one header line every 10 s and never finish."""
        host, port = self.url.removeprefix("http://").split(":")
        sockets: list[socket.socket] = []
        while self.running():
            while len(sockets) < SLOW_SOCKETS:
                try:
                    sock = socket.create_connection((host, int(port)), timeout=2)
                    sock.sendall(b"POST /attention HTTP/1.1\r\nHost: x\r\n")
                    sockets.append(sock)
                except OSError:
                    break
            alive = []
            for sock in sockets:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                    alive.append(sock)
                except OSError:
                    sock.close()
            with self.lock:
                self.statuses["row 12: dribbling sockets"]["closed by the server"] += len(
                    sockets
                ) - len(alive)
            sockets = alive
            self.sleep(10)
        for sock in sockets:
            sock.close()

    def sample_memory(self) -> None:
        while self.running():
            for pid in server_processes(self.server_pid):
                self.rss[pid].append(resident_bytes(pid))
            self.sleep(0.5)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, min(seconds, self.stop_at - time.monotonic())))


def probe(url: str, duration_s: float, results: Connection) -> None:
    """GET /healthz every PROBE_INTERVAL_S for `duration_s`; sends the times (ms, inf when it
    failed) back at the end. Runs in its own process."""
    stop_at = time.monotonic() + duration_s
    times: list[float] = []
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                ok = client.get("/healthz").status_code == 200
            except httpx.HTTPError:
                ok = False
            times.append((time.perf_counter() - started) * 1e3 if ok else float("inf"))
            time.sleep(max(0.0, min(PROBE_INTERVAL_S, stop_at - time.monotonic())))
    results.send(times)
    results.close()


def server_processes(root: int | None) -> list[int]:
    """The server's process and its children (the workers)."""
    if root is None:
        return []
    children = Path(f"/proc/{root}/task/{root}/children")
    try:
        return [root, *(int(pid) for pid in children.read_text().split())]
    except OSError:
        return []


def resident_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run(url: str, duration_s: float, server_pid: int | None) -> dict[str, Any]:
    soak = Soak(url, duration_s, server_pid)
    before = {pid: resident_bytes(pid) for pid in server_processes(server_pid)}
    threads = [threading.Thread(target=soak.attack, args=item) for item in attacks().items()]
    threads += [threading.Thread(target=target) for target in (soak.dribble, soak.sample_memory)]
    receiver, sender = multiprocessing.Pipe(duplex=False)
    prober = multiprocessing.get_context("spawn").Process(
        target=probe, args=(url, duration_s, sender)
    )
    prober.start()
    for thread in threads:
        thread.start()
    soak.probe_ms = receiver.recv()
    prober.join()
    for thread in threads:
        thread.join()
    time.sleep(2)
    after = {pid: resident_bytes(pid) for pid in server_processes(server_pid)}
    probes = sorted(soak.probe_ms)
    return {
        "duration_s": duration_s,
        "statuses": {name: dict(counts) for name, counts in soak.statuses.items()},
        "probes": {
            "count": len(probes),
            "p50_ms": probes[len(probes) // 2] if probes else None,
            "p99_ms": probes[int(len(probes) * 0.99)] if probes else None,
            "max_ms": probes[-1] if probes else None,
            "over_100_ms": sum(1 for ms in probes if ms > 100),
        },
        "rss_mib": {
            str(pid): {
                "before": before.get(pid, 0) / MiB,
                "peak": max(samples) / MiB,
                "after": after.get(pid, 0) / MiB,
            }
            for pid, samples in soak.rss.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds (180)")
    parser.add_argument("--url", help="a running server; without it one is started here")
    parser.add_argument("--pid", type=int, help="the running server's process, for its memory")
    args = parser.parse_args()
    if args.url:
        report = run(args.url, args.duration, args.pid)
    else:
        from tests.support.server import running_server

        env = {"ATTENTION_WORKERS": os.environ.get("ATTENTION_WORKERS", "2")}
        with running_server(env) as server:
            report = run(server.base_url, args.duration, server.process.pid)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
