"""The explorer asks a pretrained encoder for its answer layer by layer (NDJSON) and draws each
layer as its frame arrives; the finished page is the non-streamed answer's.

Where a test must hold the stream between frames, the page's fetch of /attention is answered by
a ReadableStream the test feeds (an init script), with the service's own frames fetched first:
what arrives when is then the test's choice, not a race against the computation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser.explorer_page import (
    THUMBS,
    cell_values,
    choose_model,
    generation,
    open_explorer,
    pretrained_body,
    row_labels,
    thumbnail,
    wait_settled,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.browser

NDJSON = "application/x-ndjson"
DETAIL_TABLE = "#model-detail figure table"
GRID_ROWS = "#model-grid tbody tr"

# fetch("/attention") with Accept: NDJSON answered by a stream that window.feedStream(text)
# writes into and window.endStream() closes; every such call is kept in window.streamedCalls
HELD_STREAM = """
(() => {
  const realFetch = window.fetch.bind(window);
  window.streamedCalls = [];
  window.fetch = (url, init = {}) => {
    if (!String(url).endsWith("/attention") || init.headers?.Accept !== "application/x-ndjson") {
      return realFetch(url, init);
    }
    let controller;
    const body = new ReadableStream({ start: (c) => { controller = c; } });
    const encoder = new TextEncoder();
    window.feedStream = (text) => controller.enqueue(encoder.encode(text));
    window.endStream = () => controller.close();
    window.streamedCalls.push({ signal: init.signal });
    const aborted = () => controller.error(new DOMException("aborted", "AbortError"));
    init.signal?.addEventListener("abort", aborted);
    const headers = { "Content-Type": "application/x-ndjson" };
    return Promise.resolve(new Response(body, { status: 200, headers }));
  };
})();
"""


@pytest.fixture(scope="module")
def whole(live_server: RunningServer, model: dict[str, Any]) -> dict[str, Any]:
    """The non-streamed answer to the page's request for the default sentence."""
    response = httpx.post(
        f"{live_server.base_url}/attention", json=pretrained_body(model["name"]), timeout=60
    )
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture(scope="module")
def frames(live_server: RunningServer, model: dict[str, Any]) -> list[str]:
    """The service's NDJSON frames for the same request, one line each (newline included)."""
    response = httpx.post(
        f"{live_server.base_url}/attention",
        json=pretrained_body(model["name"]),
        headers={"Accept": NDJSON},
        timeout=60,
    )
    response.raise_for_status()
    assert response.headers["content-type"].startswith(NDJSON)
    return [f"{line}\n" for line in response.text.splitlines() if line]


def assert_grid_is_the_whole_answer(page: Page, whole: dict[str, Any]) -> None:
    """Every thumbnail drawn, and a few heads opened show the non-streamed answer's weights."""
    attention = whole["results"][0]["attention"]
    expect(page.locator(THUMBS)).to_have_count(len(attention) * len(attention[0]))
    for layer, head in ((0, 0), (2, 7), (len(attention) - 1, len(attention[0]) - 1)):
        page.click(thumbnail(layer, head))
        expect(page.locator("#model-detail figure h3")).to_have_text(f"Layer {layer}, head {head}")
        assert cell_values(page, DETAIL_TABLE) == attention[layer][head]


def open_held(page: Page, base_url: str, name: str) -> None:
    """Open the page on the pretrained model, its streamed answer held by the test (HELD_STREAM),
    and wait for the page to ask for it."""
    page.add_init_script(HELD_STREAM)
    page.goto(f"{base_url}/?model={name}")
    wait_for_stream(page, 1)


def wait_for_stream(page: Page, calls: int) -> None:
    page.wait_for_function("n => (window.streamedCalls?.length ?? 0) >= n", arg=calls)


def feed(page: Page, text: str) -> None:
    page.evaluate("text => window.feedStream(text)", text)


def drawn_rows(page: Page) -> list[str]:
    """Each grid row's state while a stream comes: pending or drawn."""
    rows: list[str] = page.eval_on_selector_all(GRID_ROWS, "rs => rs.map(r => r.dataset.arriving)")
    return rows


def test_a_pretrained_model_is_asked_for_a_stream_and_drawn_as_its_whole_answer(
    page: Page, live_server: RunningServer, model: dict[str, Any], whole: dict[str, Any]
) -> None:
    open_explorer(page, live_server.base_url)
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if r.url.endswith("/attention") else None)
    assert choose_model(page, model["name"]) == "ready"
    assert [request.headers.get("accept") for request in sent] == [NDJSON]
    assert sent[0].post_data_json == pretrained_body(model["name"])
    assert_grid_is_the_whole_answer(page, whole)
    tokens = len(whole["results"][0]["tokens"])
    done = f"Done: {model['layers']} layers × {model['heads']} heads over {tokens} tokens"
    expect(page.locator("#status")).to_contain_text(done)
    expect(page.locator("#rollout")).to_be_visible()  # the end frame's analysis

    # the random model is still asked for its whole answer
    sent.clear()
    before = generation(page)
    page.select_option("#model", "random")
    assert wait_settled(page, before) == "ready"
    assert [request.headers.get("accept") for request in sent] == ["application/json"]


def test_the_first_layer_is_drawn_before_the_end_frame_arrives(
    page: Page,
    artifacts: Path,
    live_server: RunningServer,
    model: dict[str, Any],
    whole: dict[str, Any],
    frames: list[str],
) -> None:
    open_held(page, live_server.base_url, model["name"])
    head, first, *rest = frames
    feed(page, head)
    feed(page, first[:1000])  # a frame cut in two: drawn once its line is whole
    expect(page.locator(GRID_ROWS)).to_have_count(model["layers"])
    assert drawn_rows(page) == ["pending"] * model["layers"]
    feed(page, first[1000:])
    expect(page.locator(f"{GRID_ROWS}[data-layer='0'] td canvas")).to_have_count(model["heads"])
    assert drawn_rows(page) == ["drawn"] + ["pending"] * (model["layers"] - 1)
    assert row_labels(page, "#model-grid") == [f"Layer {k}" for k in range(model["layers"])]
    expect(page.locator("#status")).to_have_text(f"Computing… 1 of {model['layers']} layers drawn")
    expect(page.locator("#main")).to_have_attribute("data-state", "loading")
    expect(page.locator("#tab-model")).to_have_attribute("aria-selected", "true")
    expect(page.locator(THUMBS)).to_have_count(0)  # nothing opens before the whole answer
    page.locator("#panel-model").screenshot(path=str(artifacts / "first-layer.png"))

    before = generation(page)
    layers, end = rest[:-1], rest[-1]
    for frame in layers:
        feed(page, frame)
    expect(page.locator(f"{GRID_ROWS}[data-arriving='drawn']")).to_have_count(model["layers"])
    assert generation(page) == before  # every layer drawn, the end not come: still computing
    feed(page, end)
    page.evaluate("() => window.endStream()")
    assert wait_settled(page, before) == "ready"
    assert_grid_is_the_whole_answer(page, whole)


def test_an_error_frame_is_shown_as_a_failed_request(
    page: Page, live_server: RunningServer, model: dict[str, Any], frames: list[str]
) -> None:
    open_held(page, live_server.base_url, model["name"])
    before = generation(page)
    feed(page, frames[0] + frames[1])
    expect(page.locator(f"{GRID_ROWS}[data-layer='0'] canvas")).to_have_count(model["heads"])
    error = {"frame": "error", "error": {"status": 504, "detail": "the request took over 30 s"}}
    feed(page, json.dumps(error) + "\n")
    page.evaluate("() => window.endStream()")
    assert wait_settled(page, before) == "error"
    expect(page.locator("#form-error")).to_contain_text(
        "The computation took too long and was stopped (504): the request took over 30 s"
    )
    expect(page.locator("#status")).to_have_text("Error 504.")
    expect(page.locator("#tab-model")).to_be_hidden()  # no layer of a broken answer stays
    expect(page.locator(GRID_ROWS)).to_have_count(0)


def test_a_new_compute_cancels_the_stream(
    page: Page, live_server: RunningServer, model: dict[str, Any], frames: list[str]
) -> None:
    open_held(page, live_server.base_url, model["name"])
    feed(page, frames[0] + frames[1])
    expect(page.locator(f"{GRID_ROWS}[data-layer='0'] canvas")).to_have_count(model["heads"])
    page.click("#submit")
    wait_for_stream(page, 2)
    assert page.evaluate("() => window.streamedCalls.map(c => c.signal.aborted)") == [True, False]
