"""The explorer page with a streamed answer, in Chromium: time from a click on Compute to the
first layer drawn in the layers × heads grid, and to the whole view (the page ready).

    python -m benchmarks.page_streaming            every case, a table (Markdown) on stdout
    python -m benchmarks.page_streaming --runs 5   more runs per case (the median is shown)

A server is started as `make serve` starts it (benchmarks/server.py). The times are taken in the
page (performance.now): the click's, the first grid row marked drawn (arriving.js), and the page's
data-state turning ready; a MutationObserver watches both. The figures are recorded in
docs/explorer.md with the machine.
"""

from __future__ import annotations

import statistics

from playwright.sync_api import Page

from benchmarks.page import PRETRAINED, Case, print_measured, runs_per_case, words
from tests.browser.explorer_page import (
    DEFAULT_TEXT,
    choose_model,
    fill_form,
    generation,
    open_explorer,
    wait_settled,
)

CASES = [
    Case("all-minilm-l6-v2, an overview", " ".join(["word"] * 254), PRETRAINED),
    Case("all-minilm-l6-v2, every weight", words(40), PRETRAINED),
    Case("all-minilm-l6-v2, the default sentence", DEFAULT_TEXT, PRETRAINED),
]

# the moments of one computation, in the page's clock: the click, the first layer, the end
WATCH = """() => {
  const marks = { click: null, first: null, ready: null };
  window.streamMarks = marks;
  const clicked = () => { marks.click = performance.now(); };
  const submit = document.getElementById("submit");
  submit.addEventListener("click", clicked, { capture: true, once: true });
  const main = document.getElementById("main");
  new MutationObserver((_, observer) => {
    if (marks.click === null) return;
    if (marks.first === null && document.querySelector("#model-grid tr[data-arriving=drawn]")) {
      marks.first = performance.now();
    }
    if (main.dataset.state === "ready") {
      marks.ready = performance.now();
      observer.disconnect();
    }
  }).observe(main, { subtree: true, childList: true, attributes: true });
}"""


def one_run(page: Page, base_url: str, case: Case) -> dict[str, float]:
    open_explorer(page, base_url)
    choose_model(page, case.model)
    fill_form(page, case.text)
    page.evaluate(WATCH)
    before = generation(page)
    page.click("#submit")
    assert wait_settled(page, before) == "ready"
    marks: dict[str, float] = page.evaluate("() => window.streamMarks")
    done = page.inner_text("#status")  # "Done: 6 layers × 12 heads over 256 tokens (…) in … ms."
    tokens = int(done.split(" over ")[1].split(" ")[0])
    return {
        "first_ms": marks["first"] - marks["click"],
        "ready_ms": marks["ready"] - marks["click"],
        "tokens": tokens,
    }


def measure(base_url: str, runs: int) -> list[str]:
    rows = [
        "| case | Compute → first layer drawn | Compute → whole view |",
        "| --- | --- | --- |",
    ]
    for case, results in runs_per_case(base_url, CASES, runs, one_run):
        first = statistics.median(r["first_ms"] for r in results)
        ready = statistics.median(r["ready_ms"] for r in results)
        tokens = results[0]["tokens"]
        rows.append(f"| {case.name}, {tokens:.0f} tokens | {first:.0f} ms | {ready:.0f} ms |")
    return rows


def main() -> None:
    print_measured(__doc__.splitlines()[0], measure)


if __name__ == "__main__":
    main()
