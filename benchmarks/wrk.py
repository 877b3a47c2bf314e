"""wrk, when installed: the load generator that takes the least CPU from the server.

A Lua script sets the method, body and headers, and its `done` hook prints one JSON line with
the exact percentiles (microseconds), so nothing depends on wrk's human-readable output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.client import Load

MARKER = "WRK-JSON "

SCRIPT = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "%(accept)s"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"requests": %%d, "duration_us": %%d, "bytes": %%d, "p50_us": %%d, ' ..
    '"p99_us": %%d, "non2xx": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"timeout": %%d}\\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(99), e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def drive_wrk(
    url: tuple[str, int, str], body: bytes, accept: str, concurrency: int, seconds: float
) -> Load:
    host, port, path = url
    text = body.decode()
    if "]==]" in text:
        raise ValueError("the body cannot be quoted for wrk's Lua script")
    script = SCRIPT % {"body": text, "accept": accept, "marker": MARKER}
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as folder:
        path_lua = Path(folder) / "post.lua"
        path_lua.write_text(script)
        command = [
            "wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
            "--timeout", "120s", "-s", str(path_lua), f"http://{host}:{port}{path}",
        ]  # fmt: skip
        finished = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next((line for line in finished.stdout.splitlines() if line.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{finished.stdout}\n{finished.stderr}")
    result = json.loads(line[len(MARKER) :])
    return load_from(result, concurrency)


def load_from(result: dict[str, int], concurrency: int) -> Load:
    seconds = result["duration_us"] / 1e6
    errors = Counter(
        {kind: result[kind] for kind in ("connect", "read", "write", "timeout") if result[kind]}
    )
    ok = result["requests"] - result["non2xx"]
    load = Load("wrk", concurrency, seconds=seconds, errors=errors)
    load.statuses = Counter({200: ok, 0: result["non2xx"]} if result["non2xx"] else {200: ok})
    load.summary = {
        "rps": ok / seconds if seconds else 0.0,
        "p50": result["p50_us"] / 1e3,
        "p99": result["p99_us"] / 1e3,
    }
    return load
