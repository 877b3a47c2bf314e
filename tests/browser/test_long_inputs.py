"""The page at any length (docs/explorer.md, "Long inputs"): at 10, 256 and 2,048 tokens every head
draws, and a hovered cell shows the weight the API returns for that cell, asked for here with
the same request. Up to OVERVIEW_FROM tokens the page holds every weight; past it, a pooled
overview whose hovered block shows the API's max and mean, then a head's exact window."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.explorer_page import (
    DEFAULT_TEXT,
    HEAD_CARDS,
    assert_accessible,
    choose_model,
    close_to,
    generation,
    open_explorer,
    submit,
    wait_settled,
)
from tests.support.server import RunningServer

OVERVIEW_FROM = 128  # app/static/long-inputs.js: past this many tokens, a pooled overview
OVERVIEW_CELLS = 60_000  # app/static/long-inputs.js: the overview's cells over all its maps
SMALL = {"d_model": 16, "num_heads": 4}  # cheap: the test is about the page, not the model
NUMBER_AT_END = r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)$"
SLOW_MS = 60_000  # a loaded machine: the 2,048-token answer and its windows take seconds


def post(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/attention", json=body, timeout=120)
    response.raise_for_status()
    result: dict[str, Any] = response.json()["results"][0]
    return result


def tooltip_text(page: Page) -> str:
    tooltip = page.locator("#tooltip")
    expect(tooltip).to_be_visible()
    return tooltip.inner_text()


def number_at_end(text: str) -> float:
    found = re.search(NUMBER_AT_END, text)
    assert found, text
    return float(found.group(1))


def drawn_pixels(canvas: Locator) -> dict[str, int]:
    """How many of the canvas's pixels are painted, and how many colours they take."""
    counted: dict[str, int] = canvas.evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  const colours = new Set(); let opaque = 0;
                  for (let k = 0; k < d.length; k += 4) {
                    if (d[k + 3] === 255) opaque += 1;
                    colours.add((d[k] << 16) | (d[k + 1] << 8) | d[k + 2]);
                  }
                  return {cells: c.width * c.height, opaque, colours: colours.size}; }"""
    )
    return counted


def assert_every_head_draws(page: Page, heads: int) -> None:
    cards = page.locator(HEAD_CARDS)
    expect(cards).to_have_count(heads)
    for h in range(heads):
        card = cards.nth(h)
        if card.locator("table").count():
            assert card.locator("td[role=gridcell]").count() > 0
            continue
        pixels = drawn_pixels(card.locator("canvas.heatmap-canvas").first)
        assert pixels["opaque"] == pixels["cells"] > 0, pixels
        assert pixels["colours"] > 1, pixels  # weights, not a blank fill


def hover_canvas_cell(canvas: Locator, row: int, col: int) -> None:
    cell = int(canvas.get_attribute("data-cell") or 0)
    canvas.hover(position={"x": col * cell + cell / 2, "y": row * cell + cell / 2})


def long_text(tokens: int) -> str:
    return " ".join(f"w{i}" for i in range(tokens))


def sent_body(page: Page, text: str, **fields: Any) -> dict[str, Any]:
    """Submit `text` and return the body the page sent for it."""
    with page.expect_request("**/attention") as sent:
        assert submit(page, text, **fields) == "ready"
    body = sent.value.post_data_json
    assert isinstance(body, dict)
    return body


@pytest.fixture
def slow_page(page: Page) -> Page:
    page.set_default_timeout(SLOW_MS)
    return page


def test_ten_tokens_draw_tables_whose_cells_show_the_api_weights(
    slow_page: Page, live_server: RunningServer
) -> None:
    page, base = slow_page, live_server.base_url
    open_explorer(page, base)
    body = sent_body(page, long_text(10), **SMALL)
    assert "pool" not in body["output"]

    assert_every_head_draws(page, SMALL["num_heads"])
    attention = post(base, body)["attention"]
    cell = page.locator(f"{HEAD_CARDS}[data-head='1'] td[data-row='3'][data-col='7']")
    cell.hover()
    assert close_to(number_at_end(tooltip_text(page)), attention[1][3][7])


@pytest.mark.parametrize("tokens", [256, 2048])
def test_a_long_input_draws_an_overview_then_a_heads_exact_window(
    slow_page: Page, live_server: RunningServer, tokens: int
) -> None:
    page, base = slow_page, live_server.base_url
    open_explorer(page, base)
    body = sent_body(page, long_text(tokens), **SMALL)
    assert body["output"]["pool"] == 64
    assert body["output"]["steps"] == []

    assert_every_head_draws(page, SMALL["num_heads"])
    pooled = post(base, body)["pool"]
    overview = page.locator(f"{HEAD_CARDS}[data-head='2'] canvas[data-kind=overview]")
    hover_canvas_cell(overview, 5, 9)
    shown = tooltip_text(page)
    statistics = re.search(r"max (\S+), mean (\S+)$", shown)
    assert statistics, shown
    assert close_to(float(statistics.group(1)), pooled["max"][2][5][9])
    assert close_to(float(statistics.group(2)), pooled["mean"][2][5][9])
    bounds = pooled["query_bounds"]
    assert f"queries {bounds[5]}–{bounds[6] - 1}" in shown

    overview.click(position={"x": 2, "y": 2})  # block (0, 0): the window from query 0, key 0
    window = page.locator(f"{HEAD_CARDS}[data-head='2'] .card-detail[data-state=ready] canvas")
    expect(window).to_have_attribute("data-kind", "window")
    hover_canvas_cell(window, 20, 11)
    query = int(window.get_attribute("data-row-start") or 0) + 20
    key = int(window.get_attribute("data-col-start") or 0) + 11
    shown = tooltip_text(page)
    assert f"({query}) → key “w{key}” ({key})" in shown
    output = {"attention": "per_head", "heads": [2], "queries": [query], "precision": 4}
    exact = post(base, {**body, "output": output})["attention"][0][0][key]
    assert close_to(number_at_end(shown), exact)
    assert_accessible(page, f"an overview of {tokens} tokens and an exact window")


def test_a_long_input_connects_each_query_to_its_strongest_keys(
    slow_page: Page, live_server: RunningServer
) -> None:
    page = slow_page
    open_explorer(page, live_server.base_url)
    sent_body(page, long_text(300), **SMALL)
    with page.expect_request("**/attention") as sent:
        page.click("#tab-connections")
    top_k_body = sent.value.post_data_json
    assert isinstance(top_k_body, dict)
    assert top_k_body["output"]["top_k"] == 5
    expect(page.locator("#connections")).to_have_attribute("data-state", "ready")
    expect(page.locator("#conn-caption")).to_contain_text("5 strongest keys")
    expect(page.locator("#connections button.conn-query")).to_have_count(128)
    assert_accessible(page, "the top-k connections of 300 tokens")
    page.click("#conn-caption button.show-all")
    expect(page.locator("#connections button.conn-query")).to_have_count(300)


def test_a_long_input_offers_the_steps_of_its_first_128_tokens_and_draws_them(
    slow_page: Page, live_server: RunningServer
) -> None:
    """Past 128 tokens the answer has no steps: the Steps tab says why and computes them for the
    first 128 tokens on request (the API's `queries` does not shape the steps)."""
    page, base = slow_page, live_server.base_url
    open_explorer(page, base)
    body = sent_body(page, long_text(200), **SMALL)
    page.click("#tab-steps")
    steps = page.locator("#steps")
    expect(steps).to_have_attribute("data-state", "offered")
    expect(steps).to_contain_text("200 tokens")
    expect(page.locator("#trace")).to_contain_text("computed without its steps")
    expect(page.locator("#step-head option")).to_have_count(SMALL["num_heads"])

    with page.expect_request("**/attention") as sent:
        page.click("#compute-cut-steps")
    cut = sent.value.post_data_json
    assert cut["sequences"] == [[f"w{i}" for i in range(OVERVIEW_FROM)]]
    assert cut["output"]["steps"] == "all"
    expect(steps).to_have_attribute("data-state", "ready")
    expect(page.locator("#steps-layer")).to_contain_text("first 128 of the 200 tokens")
    expect(page.locator("#steps .shape", has_text="not returned")).to_have_count(0)
    expect(page.locator("#trace-query option")).to_have_count(OVERVIEW_FROM)

    truth = post(base, {**body, "text": long_text(OVERVIEW_FROM), "output": cut["output"]})
    weights = page.locator("#trace tr[data-step=attention] td[data-value]")
    expect(weights).to_have_count(OVERVIEW_FROM)
    for key in (0, 5, 127):
        shown = float(weights.nth(key).get_attribute("data-value") or "nan")
        assert close_to(shown, truth["steps"]["attention"][0][0][key]), key
    assert_accessible(page, "the cut steps of a 200-token input")


# -- the pretrained model --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pretrained(model: dict[str, Any]) -> dict[str, Any]:
    return model  # the first pretrained model of GET /models (conftest.py)


def sentence_words(count: int) -> str:
    words = DEFAULT_TEXT.split()
    return " ".join(words[k % len(words)] for k in range(count))


def test_256_wordpieces_on_the_pretrained_model_draw_every_head_and_exact_weights(
    slow_page: Page, live_server: RunningServer, pretrained: dict[str, Any]
) -> None:
    page, base = slow_page, live_server.base_url
    open_explorer(page, base)
    choose_model(page, pretrained["name"])
    body = sent_body(page, sentence_words(254))
    maps = pretrained["layers"] * pretrained["heads"]
    assert maps * body["output"]["pool"] ** 2 <= OVERVIEW_CELLS
    overview_answer = httpx.post(f"{base}/attention", json=body, timeout=60)
    assert len(overview_answer.content) <= 2_000_000  # issue 14: an overview of every head, ≤ 2 MB
    page.click("#tab-heads")

    assert_every_head_draws(page, pretrained["heads"])
    overview = page.locator(f"{HEAD_CARDS}[data-head='4'] canvas[data-kind=overview]")
    overview.click(position={"x": 2, "y": 2})
    window = page.locator(f"{HEAD_CARDS}[data-head='4'] .card-detail[data-state=ready] canvas")
    hover_canvas_cell(window, 9, 3)
    output = {"attention": "per_head", "heads": [4], "queries": [9], "precision": 4}
    exact = post(base, {**body, "layers": [0], "output": output})
    assert len(exact["tokens"]) == 256
    assert close_to(number_at_end(tooltip_text(page)), exact["attention"][0][0][0][3])


def test_a_text_too_long_for_the_model_is_cut_as_the_note_under_it_says(
    slow_page: Page, live_server: RunningServer, pretrained: dict[str, Any]
) -> None:
    """400 words: the page warns before sending and, with its box checked, asks for the cut."""
    page, limit = slow_page, pretrained["max_tokens"]
    open_explorer(page, live_server.base_url)
    choose_model(page, pretrained["name"])
    page.fill("#text", sentence_words(400))
    expect(page.locator("#text-length")).to_contain_text(f"more than the {limit} the model reads")
    expect(page.locator("#truncate-label")).to_have_text(f"Cut it to the first {limit} tokens")
    with page.expect_request("**/attention") as sent:
        assert submit(page) == "ready"
    assert sent.value.post_data_json["truncate"] is True
    expect(page.locator("#truncation")).to_contain_text(f"cut to {limit} of its 402 tokens")


def test_wordpieces_past_the_length_are_offered_the_cut_as_a_choice(
    slow_page: Page, live_server: RunningServer, pretrained: dict[str, Any]
) -> None:
    """Fewer words than the model's length, more WordPieces: the page cannot tell before sending,
    so the refusal comes, as an offer to cut and not as a red error."""
    page, limit = slow_page, pretrained["max_tokens"]
    open_explorer(page, live_server.base_url)
    choose_model(page, pretrained["name"])
    text = " ".join(["antidisestablishmentarianism"] * (limit // 3))
    page.fill("#text", text)
    expect(page.locator("#text-length")).to_be_hidden()
    assert submit(page) == "error"
    expect(page.locator("#text-error")).to_be_hidden()
    expect(page.locator("#status")).not_to_contain_text("Error")
    offer = page.locator("#truncate-submit")
    expect(offer).to_have_text(f"Cut to {limit} tokens and compute")
    assert_accessible(page, "the offer to cut a text of many WordPieces")
    before = generation(page)
    offer.click()
    assert wait_settled(page, before) == "ready"
    expect(page.locator("#truncation")).to_contain_text(f"cut to {limit} of its")
