"""The explorer page at long inputs, in Chromium: answer bytes, time to the first drawn overview,
time from a click on a head to its exact cells, and the page's element count.

    python -m benchmarks.page              every case, a table (Markdown) on stdout
    python -m benchmarks.page --runs 5     more runs per case (the median is shown)

A server is started as `make serve` starts it (benchmarks/server.py); the page is driven as the
browser tests drive it (tests/browser/explorer_page.py). "Dense" is the size of the answer the
page asked for before long inputs were shaped (every weight and every step), fetched here once;
a refusal shows its status. The figures are recorded in docs/explorer.md with the machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, Request, sync_playwright

from benchmarks.server import running_server
from tests.browser.explorer_page import (
    CHROMIUM,
    CHROMIUM_ARGS,
    choose_model,
    fill_form,
    generation,
    open_explorer,
    wait_settled,
)

PRETRAINED = "all-minilm-l6-v2"
OVERVIEW = "#heatmaps figure[data-kind=head] canvas[data-kind=overview]"
WINDOW = "#heatmaps figure[data-head='1'] .card-detail[data-state=ready] canvas"


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    model: str = "random"


def words(count: int) -> str:
    return " ".join(f"w{i}" for i in range(count))


CASES = [
    Case("random, 256 tokens, d_model 64, 4 heads", words(256)),
    Case("random, 2,048 tokens, d_model 64, 4 heads", words(2048)),
    Case("all-minilm-l6-v2, 256 WordPieces, 6 × 12 heads", " ".join(["word"] * 254), PRETRAINED),
]


def dense_bytes(base_url: str, case: Case) -> str:
    """The size of the answer the page asked for before (every weight, every step), or why not."""
    if case.model == "random":
        output = {"attention": "per_head", "steps": "all", "precision": 4, "metrics": True}
        body: dict[str, Any] = {"text": case.text, "output": output}
    else:
        output = {"attention": "per_head", "precision": 4, "metrics": True, "analysis": True}
        body = {"model": case.model, "text": case.text, "layers": "all", "output": output}
    response = httpx.post(f"{base_url}/attention", json=body, timeout=300)
    if response.status_code != 200:
        return f"refused ({response.status_code})"
    return f"{len(response.content) / 1e6:.1f} MB"


def answer_bytes(base_url: str, request: Request) -> int:
    """The size of the answer to the page's request, asked again: a streamed answer's body
    (NDJSON, a pretrained model) is read by the page, not kept by Playwright."""
    headers = {"content-type": "application/json", "accept": request.headers.get("accept", "")}
    response = httpx.post(
        f"{base_url}/attention", content=request.post_data, headers=headers, timeout=300
    )
    return len(response.content)


def one_run(page: Page, base_url: str, case: Case) -> dict[str, float]:
    open_explorer(page, base_url)
    if case.model != "random":
        choose_model(page, case.model)
    fill_form(page, case.text)
    before = generation(page)
    with page.expect_response("**/attention") as answered:
        started = time.perf_counter()
        page.click("#submit")
        assert wait_settled(page, before) == "ready"
        page.click("#tab-heads")
        page.locator(OVERVIEW).first.wait_for()
        overview_s = time.perf_counter() - started
    answer = answer_bytes(base_url, answered.value.request)
    elements = page.evaluate("() => document.getElementsByTagName('*').length")
    overview = page.locator("#heatmaps figure[data-head='1'] canvas[data-kind=overview]")
    with page.expect_response("**/attention") as fetched:
        started = time.perf_counter()
        overview.click(position={"x": 2, "y": 2})
        page.locator(WINDOW).wait_for()
        window_s = time.perf_counter() - started
    return {
        "answer_bytes": answer,
        "overview_s": overview_s,
        "window_bytes": len(fetched.value.body()),
        "window_s": window_s,
        "elements": elements,
    }


Run = Callable[[Page, str, Any], dict[str, float]]


def runs_per_case(base_url: str, cases: Sequence[Any], runs: int, one_run: Run) -> Iterator[
    tuple[Any, list[dict[str, float]]]
]:  # fmt: skip
    """Each case with its `runs` measurements, each run on a fresh page of one Chromium."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for case in cases:
            results = []
            for _ in range(runs):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(120_000)
                results.append(one_run(page, base_url, case))
                page.close()
            yield case, results
        browser.close()


def print_measured(description: str, measure: Callable[[str, int], list[str]]) -> None:
    """The command line of a page benchmark: a server of its own, the table printed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=3, help="runs per case; the median is shown")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as logs,
        running_server({}, Path(logs)) as server,
    ):
        print("\n".join(measure(server.base_url, args.runs)))


def measure(base_url: str, runs: int) -> list[str]:
    rows = [
        "| case | answer (was: dense) | submit → overview drawn | elements | head click → exact "
        "64 × 64 drawn | window answer |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for case, results in runs_per_case(base_url, CASES, runs, one_run):
        median = {key: statistics.median(r[key] for r in results) for key in results[0]}
        rows.append(
            f"| {case.name} | {median['answer_bytes'] / 1e3:.0f} kB "
            f"(was {dense_bytes(base_url, case)}) | {median['overview_s'] * 1e3:.0f} ms | "
            f"{median['elements']:.0f} | {median['window_s'] * 1e3:.0f} ms | "
            f"{median['window_bytes'] / 1e3:.0f} kB |"
        )
    return rows


def main() -> None:
    print_measured(__doc__.splitlines()[0], measure)


if __name__ == "__main__":
    main()
