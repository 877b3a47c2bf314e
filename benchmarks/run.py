"""`make bench`: in-process timings, then the real server under load, in one run on one machine.

    .venv/bin/python -m benchmarks.run                     # the five cases, about a minute
    .venv/bin/python -m benchmarks.run --gpu --json gpu.json   # plus 1×2048 tokens (xl)
    .venv/bin/python -m benchmarks.run --cases small,large --client asyncio
    .venv/bin/python -m benchmarks.run --smoke             # a few requests: does it all run?

1. In process: the library's hand-written path against torch.nn.MultiheadAttention (calls
   alternating, median of per-pair ratios), and for the large case the service's encoders
   against FastAPI's own.
2. `python -m app`, the command of `make serve`, on a free loopback port. Per case: the
   handler's own work in this process (parse, checks, model, cut, encode; median), then the
   server driven by wrk when installed (else the bundled asyncio client) at concurrency 1 and
   8, right after, so that both see the same machine; the server's peak resident memory while
   it serves the large case at concurrency 8.
3. The decoders (benchmarks/decoders.py, docs/models.md): per architecture, a forward pass with
   every layer's attention at 128 and 1,024 tokens and greedy generation, in process beside
   transformers eager on the same folder, then end to end through a server of their own
   (--smoke: tiny models, in process only; --no-decoders skips them).
4. A table (Markdown), the targets of docs/performance.md met or missed, and with `--json` the
   whole run, machine-readable.

The server inherits the environment: ATTENTION_WORKERS, ATTENTION_TORCH_THREADS and the other
settings apply to it as to `make serve`; ATTENTION_DEVICE=cpu forces the CPU on a GPU machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import torch

from app.http.encoding import MSGPACK, decode_msgpack_arrays
from app.service import Service, torch_threads
from app.serving.settings import Settings
from attention.bert import bundled_model_path
from benchmarks import batching, decoders, floor, peers, pretrained_peers, report, wrk
from benchmarks.cases import CASES, Case, select, server_env
from benchmarks.client import Load, drive
from benchmarks.inprocess import InProcess, encoder_timings, library_ratios, time_case
from benchmarks.report import Row
from benchmarks.server import PeakMemory, Server, rss_bytes, running_server

LIBRARY_CASES = ("small", "large", "batch", "xl")  # shapes compared with nn.MultiheadAttention
MEMORY_CASE, MEMORY_CONCURRENCY, MEMORY_FACTOR = "large", 8, 3
ACCEPTED_WITH = {"application/json": "application/json", MSGPACK: MSGPACK}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", help="comma-separated case names (default: the five)")
    parser.add_argument("--gpu", action="store_true", help="add the GPU case xl (1×2048 tokens)")
    parser.add_argument("--smoke", action="store_true", help="a few requests per case, no timing")
    parser.add_argument("--json", type=Path, help="also write the whole run to this file")
    parser.add_argument(
        "--client", choices=("auto", "wrk", "asyncio", "httpx"), default="auto",
        help="load generator; auto = wrk when installed, else asyncio (--smoke: asyncio)",
    )  # fmt: skip
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per load phase")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated client counts")
    parser.add_argument("--no-server", action="store_true", help="in-process timings only")
    parser.add_argument(
        "--peers", default="small,large",
        help="cases also served by the BASELINE minimal app, side by side ('' = none)",
    )  # fmt: skip
    parser.add_argument("--peer-rounds", type=int, default=3, help="alternating turns per peer")
    parser.add_argument(
        "--no-pretrained", action="store_true",
        help="skip the pretrained path beside the transformers BASELINE (skipped with --smoke)",
    )  # fmt: skip
    parser.add_argument(
        "--no-batching", action="store_true",
        help="skip micro-batching off and on at c=1, 8, 32 (skipped with --smoke)",
    )  # fmt: skip
    parser.add_argument(
        "--no-decoders", action="store_true",
        help="skip the decoders beside transformers eager (benchmarks/decoders.py)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.client == "wrk" and not wrk.available():
        parser.error("--client wrk: wrk is not installed (apt-get install wrk)")
    if args.client == "auto":
        args.client = "wrk" if wrk.available() and not args.smoke else "asyncio"
    args.concurrency = [int(part) for part in args.concurrency.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    cases = select(args.cases, args.gpu)
    os.environ.update(server_env(cases))  # the in-process service and the server alike
    settings = Settings()
    service = Service.from_settings(settings)
    torch.set_num_threads(torch_threads(settings))  # as the server's lifespan does
    run: dict[str, Any] = {
        "machine": report.machine(),
        "device": str(service.device),
        "torch_threads": torch.get_num_threads(),
        "server": {
            "workers": settings.workers,
            "max_concurrency": settings.max_concurrency,
            "torch_threads": torch_threads(settings),
        },
        "client": args.client,
        "smoke": args.smoke,
        "load_average_before": report.load_average(),
    }
    print(_header(run), flush=True)

    run["library"] = measure_library(cases, service.device, args)
    run["encoders"] = measure_encoders(cases, service, args)
    if "small" in {case.name for case in cases}:
        run["floor"] = measure_floor(args)
    inprocess: dict[str, InProcess] = {}
    rows: list[Row] = []
    memory: dict[str, Any] | None = None
    peer_rows: list[peers.PeerRow] = []
    if args.no_server:
        print("\nIn process (parse, checks, model, cut, encode), median of repetitions:")
        for case in cases:
            inprocess[case.name] = measure_inprocess(case, service, args)
    else:
        with (
            tempfile.TemporaryDirectory(prefix="bench-") as folder,
            running_server(server_env(cases), Path(folder)) as server,
        ):
            rows, memory = measure_server(server, cases, service, inprocess, args)
            peer_rows = measure_peers(server, cases, settings.workers, Path(folder), args)
    run["peers"] = [asdict(each) for each in peer_rows]
    run["inprocess"] = [asdict(each) for each in inprocess.values()]
    run["rows"] = [{**asdict(row), "ratio": row.ratio} for row in rows]
    run["memory"] = memory
    found = report.targets(rows, run["library"], memory, peer_rows)
    run["targets"] = [asdict(target) for target in found]
    if not (args.smoke or args.no_server or args.no_pretrained) and bundled_model_path():
        # its own servers, one worker each: benchmarks/pretrained_peers.py
        print("\nThe pretrained path beside the hand-rolled transformers server (BASELINE):")
        folder_json = Path(tempfile.mkdtemp(prefix="bench-pretrained-")) / "peers.json"
        pretrained_peers.main(["--rounds", str(args.peer_rounds), "--json", str(folder_json)])
        run["pretrained_peers"] = json.loads(folder_json.read_text())
    if not (args.smoke or args.no_server or args.no_batching):
        # micro-batching off and at its default wait, c=1, 8, 32: benchmarks/batching.py
        print("\nMicro-batching off and on, beside the minimal app (BASELINE):")
        folder_json = Path(tempfile.mkdtemp(prefix="bench-batching-")) / "batching.json"
        waits = f"0,{Settings.model_fields['batch_wait_ms'].default}"
        batching.main(["--waits", waits, "--rounds", str(args.peer_rounds), "--json",
                       str(folder_json)])  # fmt: skip
        run["batching"] = json.loads(folder_json.read_text())
    if not args.no_decoders and decoders.available():
        print("\nDecoders beside transformers eager (benchmarks/decoders.py)...", flush=True)
        # --smoke: tiny models in process only; else also a real server (ATTENTION_MODELS_DIR)
        run["decoders"] = decoders.report(args.smoke, over_http=not (args.smoke or args.no_server))
    run["load_average_after"] = report.load_average()
    run["elapsed_s"] = round(time.perf_counter() - began, 1)

    if rows:
        print("\n" + report.table(rows))
    if peer_rows:
        print("\nBeside the BASELINE (same run, alternating turns):\n" + peers.table(peer_rows))
    if memory:
        print(_memory_text(memory))
    if run.get("decoders"):
        print("\nDecoders, in process beside transformers eager (ratio: ours / theirs, the "
              "same run), then end to end:\n" + decoders.tables(run["decoders"]))  # fmt: skip
    if not args.smoke:
        print("\nTargets (docs/performance.md):\n" + report.targets_text(found))
    print(f"\nload average {run['load_average_after']}, {run['elapsed_s']} s in all")
    if args.json:
        args.json.write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    failed = [row for row in rows if row.errors or row.requests == 0]
    return 1 if failed else 0


def _header(run: dict[str, Any]) -> str:
    machine = run["machine"]
    return (
        f"{machine['cores']} cores, {machine['cpu']}, torch {machine['torch']}, "
        f"device {run['device']}{' (' + machine['cuda'] + ')' if machine['cuda'] else ''}; "
        f"torch threads {run['torch_threads']}; server {run['server']}; client {run['client']}; "
        f"load average {run['load_average_before']}"
    )


def measure_floor(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The small case's per-request cost in process, the service and the minimal app called
    as ASGI apps (benchmarks/floor.py): issue 17's floor without the HTTP stack."""
    rounds, calls = (1, 3) if args.smoke else (9, 200)
    found = asyncio.run(floor.measure(CASES["small"], rounds, calls))
    print("\nThe per-request floor in process (small, ASGI calls, best of the turns' medians):")
    for each in found:
        print(f"  {each.app:24s} {each.best_us:7.1f} µs (median {each.median_us:.1f})")
    return [asdict(each) for each in found]


def measure_inprocess(case: Case, service: Service, args: argparse.Namespace) -> InProcess:
    """The handler's work for the case, in this process, just before the server is driven
    with it: the two are compared, so they are measured as close in time as they can be."""
    budget, least = (0.0, 1) if args.smoke else (1.5, 3)
    result = time_case(case, service, budget, least)
    print(
        f"  {case.name:10s} in process {result.median_ms:.3f} ms (min {result.min_ms:.3f}, "
        f"{result.reps} reps), {result.response_bytes:,} bytes  [{case.about}]",
        flush=True,
    )
    return result


def measure_library(
    cases: list[Case], device: torch.device, args: argparse.Namespace
) -> list[dict[str, Any]]:
    print("\nLibrary ÷ torch.nn.MultiheadAttention(need_weights=True, per head), same weights:")
    budget, least = (0.0, 2) if args.smoke else (1.0, 30)
    entries = []
    for case in cases:
        if case.name not in LIBRARY_CASES:
            continue
        for ratio in library_ratios(case, device, budget, least):
            entries.append(asdict(ratio))
            print(
                f"  {case.name:10s} {ratio.path:12s} ours {ratio.ours_ms:8.3f} ms, "
                f"torch {ratio.torch_ms:8.3f} ms, ratio {ratio.ratio:.2f}",
                flush=True,
            )
    return entries


def measure_encoders(
    cases: list[Case], service: Service, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """The large case's results through each encoder; with --smoke, the small case's, once."""
    name = "small" if args.smoke else "large"
    case = next((case for case in cases if case.name == name), None)
    if case is None:
        return []
    print(f"\nEncoding one {name} response's results (median):")
    entries = []
    for timing in encoder_timings(case, service, budget_s=0.0 if args.smoke else 1.0):
        entries.append(asdict(timing))
        print(f"  {timing.encoder:55s} {timing.ms:10.2f} ms  {timing.response_bytes:,} bytes")
    return entries


def measure_server(
    server: Server,
    cases: list[Case],
    service: Service,
    inprocess: dict[str, InProcess],
    args: argparse.Namespace,
) -> tuple[list[Row], dict[str, Any] | None]:
    """Per case: its in-process time (filled into `inprocess`), then the server under load."""
    started = idle = rss_bytes(server.process.pid)
    print(f"\nServer {server.base_url} (pid {server.process.pid}), RSS {started / 1e6:.1f} MB")
    url = ("127.0.0.1", server.port, "/attention")
    rows, memory = [], None
    for case in cases:
        inprocess[case.name] = measure_inprocess(case, service, args)
        size = probe(server, case)
        if case.name == MEMORY_CASE:
            # idle: at rest after one answer of the case (module built, CUDA initialised)
            idle = rss_bytes(server.process.pid)
        for concurrency in args.concurrency:
            seconds = _duration(args, inprocess.get(case.name))
            if not args.smoke:
                warm(url, case, concurrency)
            if case.name == MEMORY_CASE and concurrency == MEMORY_CONCURRENCY and not args.smoke:
                with PeakMemory(server.process.pid) as peak:
                    load = load_phase(args, url, case, concurrency, seconds)
                budget = idle + MEMORY_CONCURRENCY * size * MEMORY_FACTOR
                memory = {
                    "case": case.name,
                    "concurrency": concurrency,
                    "started_bytes": started,
                    "idle_bytes": idle,
                    "before_bytes": rss_bytes(server.process.pid),
                    "peak_bytes": peak.peak,
                    "response_bytes": size,
                    "budget_bytes": budget,
                    "kernel_high_water_mark": peak.hwm_reset,
                }
            else:
                load = load_phase(args, url, case, concurrency, seconds)
            row = _row(case, load, size, inprocess.get(case.name))
            rows.append(row)
            print(
                f"  {case.name:10s} c={concurrency}: {row.rps:9.1f} req/s, p50 "
                f"{report._number(row.p50_ms)} ms, p99 {report._number(row.p99_ms)} ms"
                + (f", errors {row.errors}" if row.errors else ""),
                flush=True,
            )
    return rows, memory


def measure_peers(
    server: Server, cases: list[Case], workers: int, log_dir: Path, args: argparse.Namespace
) -> list[peers.PeerRow]:
    """The service and the minimal app (a BASELINE), driven in turns on the same cases."""
    names = [name.strip() for name in args.peers.split(",") if name.strip()]
    chosen = [case for case in cases if case.name in names]
    if not chosen:
        return []
    rounds = 1 if args.smoke else args.peer_rounds
    found: list[peers.PeerRow] = []
    with peers.running_minimal(workers, log_dir, chosen[0]) as port:
        print(f"\nBASELINE: minimal FastAPI + orjson app on port {port}, {workers} worker(s)")
        for case in chosen:

            def drive_case(url: tuple[str, int, str], concurrency: int, case: Case = case) -> Load:
                if not args.smoke:
                    warm(url, case, concurrency)
                return load_phase(args, url, case, concurrency, float(args.duration))

            for concurrency in args.concurrency:
                row = peers.compare(drive_case, server.port, port, case.name, concurrency, rounds)
                found.append(row)
                print(
                    f"  {case.name:10s} c={concurrency}: service {row.service_rps:9.1f} req/s, "
                    f"baseline {row.baseline_rps:9.1f} req/s: {row.ratio:.2f}×",
                    flush=True,
                )
    return found


def probe(server: Server, case: Case) -> int:
    """One request checked whole (status, media type, decodable): the response's size."""
    response = httpx.post(
        f"{server.base_url}/attention",
        content=case.body(),
        headers={"content-type": "application/json", "accept": case.accept},
        timeout=300.0,
    )
    if response.status_code != 200:
        raise SystemExit(f"{case.name}: HTTP {response.status_code}: {response.text[:500]}")
    media = response.headers["content-type"].split(";")[0]
    if media != ACCEPTED_WITH[case.accept]:
        raise SystemExit(f"{case.name}: answered {media}, asked for {case.accept}")
    if case.accept == MSGPACK:
        import ormsgpack

        decoded = decode_msgpack_arrays(ormsgpack.unpackb(response.content))
        expected = (case.heads, case.tokens, case.tokens)
        if decoded["results"][0]["attention"].shape != expected:
            raise SystemExit(f"{case.name}: MessagePack attention is not {expected}")
    return len(response.content)


def _duration(args: argparse.Namespace, inprocess: InProcess | None) -> float:
    """The phase's length: `--duration`, longer for slow cases so that p50 has ~20 samples."""
    seconds = float(args.duration)
    if inprocess is None:
        return seconds
    return max(seconds, min(15.0, 20 * inprocess.median_ms / 1e3))


def warm(url: tuple[str, int, str], case: Case, concurrency: int) -> None:
    drive("asyncio", url, case.body(), case.accept, concurrency, 0.5, 4 * concurrency)


def load_phase(
    args: argparse.Namespace,
    url: tuple[str, int, str],
    case: Case,
    concurrency: int,
    seconds: float,
) -> Load:
    if args.smoke:
        return drive(args.client, url, case.body(), case.accept, concurrency, 30.0, concurrency)
    if args.client == "wrk":
        return wrk.drive_wrk(url, case.body(), case.accept, concurrency, seconds)
    return drive(args.client, url, case.body(), case.accept, concurrency, seconds)


def _row(case: Case, load: Load, size: int, inprocess: InProcess | None) -> Row:
    errors = {str(kind): count for kind, count in load.errors.items()}
    errors.update({f"HTTP {status}": n for status, n in load.statuses.items() if status != 200})
    return Row(
        case=case.name,
        client=load.client,
        concurrency=load.concurrency,
        requests=load.requests,
        rps=load.rps,
        p50_ms=load.percentile_ms(50),
        p99_ms=load.percentile_ms(99),
        response_bytes=size,
        inprocess_ms=None if inprocess is None else inprocess.median_ms,
        errors=errors,
    )


def _memory_text(memory: dict[str, Any]) -> str:
    return (
        f"\nMemory serving {memory['case']} at c={memory['concurrency']}: peak RSS "
        f"{memory['peak_bytes'] / 1e6:.1f} MB (at start {memory['started_bytes'] / 1e6:.1f} MB); "
        f"idle {memory['idle_bytes'] / 1e6:.1f} MB + "
        f"{MEMORY_CONCURRENCY} × {memory['response_bytes'] / 1e6:.2f} MB × {MEMORY_FACTOR} = "
        f"{memory['budget_bytes'] / 1e6:.1f} MB allowed"
    )


if __name__ == "__main__":
    sys.exit(main())
