"""The explorer page at /, driven in Debian's Chromium against the real server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.explorer_page import (
    DEFAULT_TEXT,
    HEAD_CARDS,
    STEP_ORDER,
    cell_values,
    close_to,
    column_labels,
    generation,
    no_horizontal_scroll,
    open_explorer,
    request_body,
    row_labels,
    submit,
    wait_settled,
)
from tests.support.server import RunningServer, running_server

pytestmark = pytest.mark.browser

DEFAULT_TOKENS = DEFAULT_TEXT.split()


def post(base_url: str, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.post(f"{base_url}/attention", json=body, headers=headers, timeout=30)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def expected_shapes(length: int, d_model: int, heads: int, kv_heads: int) -> dict[str, str]:
    d = d_model // heads
    per_head = f"{heads} × {length} × {length}"
    return {
        "token_embeddings": f"{length} × {d_model}",
        "positional": f"{length} × {d_model}",
        "inputs": f"{length} × {d_model}",
        "q": f"{heads} × {length} × {d}",
        "k": f"{kv_heads} × {length} × {d}",
        "v": f"{kv_heads} × {length} × {d}",
        "scores": per_head,
        "scaled_scores": per_head,
        "masked_scores": per_head,
        "attention": per_head,
        "head_outputs": f"{heads} × {length} × {d}",
        "concat": f"{length} × {heads * d}",
        "output": f"{length} × {d_model}",
    }


def test_page_loads_and_draws_every_head_of_the_default_sentence(
    page: Page, live_server: RunningServer
) -> None:
    assert open_explorer(page, live_server.base_url) == "ready"
    expect(page).to_have_title("Attention explorer")
    expect(page.locator("#text")).to_have_value(DEFAULT_TEXT)
    expect(page.locator(HEAD_CARDS)).to_have_count(4)
    expect(page.locator("#heatmaps figure[data-kind=average]")).to_have_count(1)
    for head in range(4):
        card = f"{HEAD_CARDS}[data-head='{head}']"
        assert row_labels(page, f"{card} table") == DEFAULT_TOKENS
        assert column_labels(page, f"{card} table") == DEFAULT_TOKENS
        # numbered from 0, as in the API
        expect(page.locator(f"{card} figcaption h3")).to_have_text(f"Head {head}")
        expect(page.locator(f"{card} .metrics")).to_contain_text("Entropy")
        expect(page.locator(f"{card} .metrics")).to_contain_text("Mean distance")
    expect(page.locator("#heads-legend .legend")).to_be_visible()
    expect(page.locator("#download-json")).to_be_enabled()


def test_submitting_a_sentence_redraws_the_heatmaps_with_its_tokens(
    page: Page, live_server: RunningServer
) -> None:
    open_explorer(page, live_server.base_url)
    assert submit(page, "Attention is all you need") == "ready"
    tokens = ["Attention", "is", "all", "you", "need"]
    first = f"{HEAD_CARDS}[data-head='0'] table"
    assert row_labels(page, first) == tokens
    assert column_labels(page, first) == tokens
    expect(page.locator(f"{first} td[role=gridcell]")).to_have_count(25)
    expect(page.locator("#status")).to_contain_text("4 heads over 5 tokens")


def test_changing_the_number_of_heads_changes_the_heatmaps_and_their_labels(
    page: Page, live_server: RunningServer
) -> None:
    open_explorer(page, live_server.base_url)
    assert submit(page, num_heads=8) == "ready"
    expect(page.locator(HEAD_CARDS)).to_have_count(8)
    for head in range(8):
        table = f"{HEAD_CARDS}[data-head='{head}'] table"
        assert row_labels(page, table) == DEFAULT_TOKENS
        assert column_labels(page, table) == DEFAULT_TOKENS
        expect(page.locator(f"{table} td[data-head='{head}']")).to_have_count(100)
    assert submit(page, num_heads=2) == "ready"
    expect(page.locator(HEAD_CARDS)).to_have_count(2)
    assert row_labels(page, "#heatmaps figure[data-kind=average] table") == DEFAULT_TOKENS


def test_a_hovered_or_focused_cell_shows_the_exact_value_of_the_response(
    page: Page, live_server: RunningServer
) -> None:
    open_explorer(page, live_server.base_url)
    text = "Time flies like an arrow"
    with page.expect_request("**/attention") as sent:
        assert submit(page, text, num_heads=2, seed=7) == "ready"
    body = request_body(text, num_heads=2, seed=7)
    assert sent.value.post_data_json == body
    result = post(live_server.base_url, body)["results"][0]
    attention = result["attention"]

    # every cell of every head carries the response's number
    for head, matrix in enumerate(attention):
        assert cell_values(page, f"{HEAD_CARDS}[data-head='{head}'] table") == matrix

    # hover: tooltip and readout show that number exactly
    cell = page.locator("#heatmaps td[data-head='1'][data-query='2'][data-key='4']")
    cell.hover()
    expected = attention[1][2][4]
    assert float(cell.get_attribute("data-value") or "nan") == expected
    tooltip = page.locator("#tooltip")
    expect(tooltip).to_be_visible()
    shown = re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?$", tooltip.inner_text())
    assert shown, tooltip.inner_text()
    assert float(shown[0]) == expected
    readout = page.locator(f"{HEAD_CARDS}[data-head='1'] .readout")
    expect(readout).to_have_attribute("aria-live", "polite")
    expect(readout).to_contain_text("“like”")
    expect(readout).to_contain_text("“arrow”")

    # keyboard: focus a cell, move with the arrows, the readout follows
    page.locator("#heatmaps td[data-head='0'][data-query='0'][data-key='0']").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("({...document.activeElement.dataset})")
    assert (focused["head"], focused["query"], focused["key"]) == ("0", "2", "1")
    assert float(focused["value"]) == attention[0][2][1]
    readout0 = page.locator(f"{HEAD_CARDS}[data-head='0'] .readout")
    expect(readout0).to_contain_text(f"{focused['value']}")
    expect(tooltip).to_be_visible()

    # the average heatmap is the mean of the heads
    average = cell_values(page, "#heatmaps figure[data-kind=average] table")
    for i, row in enumerate(average):
        for j, value in enumerate(row):
            assert close_to(value, (attention[0][i][j] + attention[1][i][j]) / 2, 1e-6)


def test_the_steps_panel_walks_the_pipeline_with_each_shape(
    page: Page, live_server: RunningServer, artifacts: Path
) -> None:
    open_explorer(page, live_server.base_url)
    page.click("#tab-steps")
    expect(page.locator("#panel-steps")).to_be_visible()
    steps = page.locator("#steps article.step")
    expect(steps).to_have_count(len(STEP_ORDER))
    assert [s.get_attribute("data-step") for s in steps.all()] == STEP_ORDER
    for name, shape in expected_shapes(10, 64, 4, 4).items():
        step = page.locator(f"#steps article[data-step={name}]")
        expect(step.locator(".shape")).to_have_attribute("data-shape", shape)
        expect(step.locator(".shape")).to_have_text(shape)
        expect(step.locator("h3")).not_to_be_empty()
        expect(step.locator(".step-explain")).not_to_be_empty()
        expect(step.locator("table[role=grid]")).to_have_count(1)
    page.screenshot(path=str(artifacts / "steps.png"), full_page=True)

    # grouped-query attention: fewer K/V heads, and the head selector picks the slices
    assert submit(page, num_heads=8, num_kv_heads=2) == "ready"
    for name, shape in expected_shapes(10, 64, 8, 2).items():
        step = page.locator(f"#steps article[data-step={name}] .shape")
        expect(step).to_have_attribute("data-shape", shape)
    body = request_body(num_heads=8, num_kv_heads=2)
    steps_json = post(live_server.base_url, body)["results"][0]["steps"]
    page.select_option("#step-head", "5")
    q_table = "#steps article[data-step=q] table"
    expect(page.locator(q_table)).to_have_attribute("data-head", "5")
    assert cell_values(page, q_table) == steps_json["q"][5]
    k_table = "#steps article[data-step=k] table"
    expect(page.locator(k_table)).to_have_attribute("data-head", "1")  # heads 4-7 share K/V 1
    assert cell_values(page, k_table) == steps_json["k"][1]
    assert cell_values(page, "#steps article[data-step=concat] table") == steps_json["concat"]


def test_an_invalid_configuration_shows_the_message_beside_the_field(
    page: Page, live_server: RunningServer
) -> None:
    open_explorer(page, live_server.base_url)
    assert submit(page, num_heads=10) == "error"
    error = page.locator("#num_heads-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("not divisible by num_heads=10")
    expect(page.locator("#num_heads")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#num_heads")).to_be_focused()
    expect(page.locator("#form-error")).to_be_visible()
    # the last good result stays, marked as such: not a blank page
    expect(page.locator("#stale-note")).to_be_visible()
    expect(page.locator(HEAD_CARDS)).to_have_count(4)
    # a mistake elsewhere lands beside that field
    assert submit(page, num_heads=4, num_kv_heads=3) == "error"
    expect(page.locator("#num_heads-error")).to_be_hidden()
    expect(page.locator("#num_kv_heads-error")).to_contain_text("does not divide")
    # fixing it clears the messages
    assert submit(page, num_kv_heads="") == "ready"
    expect(page.locator(".field-error:visible")).to_have_count(0)
    expect(page.locator("#num_kv_heads")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#stale-note")).to_be_hidden()


def test_network_and_server_errors_are_shown_not_a_blank_page(
    page: Page, live_server: RunningServer
) -> None:
    open_explorer(page, live_server.base_url)
    page.route("**/attention", lambda route: route.abort("connectionrefused"))
    assert submit(page) == "error"
    expect(page.locator("#form-error")).to_contain_text("Could not reach the service")
    page.unroute("**/attention")

    def busy(route: Route) -> None:
        route.fulfill(status=503, json={"detail": "draining: try again shortly"})

    page.route("**/attention", busy)
    assert submit(page) == "error"
    expect(page.locator("#form-error")).to_contain_text("503")
    expect(page.locator("#form-error")).to_contain_text("draining")
    expect(page.locator(HEAD_CARDS)).to_have_count(4)


def test_the_form_can_be_used_with_the_keyboard_alone(
    page: Page, live_server: RunningServer
) -> None:
    open_explorer(page, live_server.base_url)
    page.keyboard.press("Tab")  # the skip link comes first
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#tour-start")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator(".intro-link")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#text")).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused field shows no focus ring"
    page.keyboard.press("Control+A")
    page.keyboard.type("Colorless green ideas sleep furiously")
    page.keyboard.press("Tab")
    expect(page.locator("#submit")).to_be_focused()
    # the head configuration folded after the first result: Enter on its summary unfolds it
    page.keyboard.press("Tab")
    expect(page.locator("#form-more > summary")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#form-more")).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    expect(page.locator("#d_model")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#num_heads")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("2")
    before = generation(page)
    page.keyboard.press("Enter")
    assert wait_settled(page, before) == "ready"
    expect(page.locator(HEAD_CARDS)).to_have_count(2)
    first = f"{HEAD_CARDS}[data-head='0'] table"
    assert row_labels(page, first) == ["Colorless", "green", "ideas", "sleep", "furiously"]

    # the tabs follow the arrow keys; Tab then enters the panel
    page.locator("#tab-heads").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-connections")).to_be_focused()
    expect(page.locator("#tab-connections")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-connections")).to_be_visible()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#panel-steps")).to_be_visible()


def test_the_connection_view_draws_one_line_per_weight_of_the_chosen_head(
    page: Page, live_server: RunningServer
) -> None:
    open_explorer(page, live_server.base_url)
    attention = post(live_server.base_url, request_body())["results"][0]["attention"]
    page.click("#tab-connections")
    page.select_option("#conn-head", "2")
    lines = page.locator("#connections line")
    positive = sum(1 for row in attention[2] for w in row if w)
    expect(lines).to_have_count(positive)
    weights = page.eval_on_selector_all(
        "#connections line",
        "ls => ls.map(l => [Number(l.dataset.query), Number(l.dataset.key), l.dataset.weight])",
    )
    for i, j, weight in weights:
        assert float(weight) == attention[2][i][j]
    page.locator("#connections button[data-query='7']").focus()
    expect(page.locator("#conn-readout")).to_contain_text("“swing” attends to")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#connections button[data-query='8']")).to_be_focused()
    expect(page.locator("#connections line.on")).to_have_count(sum(1 for w in attention[2][8] if w))
    page.keyboard.press("Enter")
    expect(page.locator("#connections button[data-query='8']")).to_have_attribute(
        "aria-pressed", "true"
    )


def test_the_response_and_a_heatmap_can_be_downloaded(
    page: Page, live_server: RunningServer, artifacts: Path
) -> None:
    open_explorer(page, live_server.base_url)
    with page.expect_download() as download_json:
        page.click("#download-json")
    saved = artifacts / "response.json"
    download_json.value.save_as(saved)
    data = json.loads(saved.read_text())
    expected = post(live_server.base_url, request_body())["results"][0]
    assert data["results"][0]["attention"] == expected["attention"]
    assert data["results"][0]["steps"]["concat"] == expected["steps"]["concat"]

    card = f"{HEAD_CARDS}[data-head='0']"
    with page.expect_download() as download_svg:
        page.click(f"{card} button[data-download=svg]")
    svg = artifacts / download_svg.value.suggested_filename
    download_svg.value.save_as(svg)
    assert svg.suffix == ".svg"
    content = svg.read_text()
    assert content.startswith("<svg")
    assert "Head 0" in content
    assert content.count("<rect") >= 100
    with page.expect_download() as download_png:
        page.click(f"{card} button[data-download=png]")
    png = artifacts / download_png.value.suggested_filename
    download_png.value.save_as(png)
    assert png.read_bytes().startswith(b"\x89PNG")


def test_a_390_pixel_screen_needs_no_horizontal_scrolling(
    browser: Browser, live_server: RunningServer, artifacts: Path
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        assert open_explorer(page, live_server.base_url) == "ready"
        assert no_horizontal_scroll(page, 390)
        page.screenshot(path=str(artifacts / "heads.png"), full_page=True)
        for tab in ("connections", "steps"):
            page.click(f"#tab-{tab}")
            assert no_horizontal_scroll(page, 390), f"the {tab} panel scrolls sideways"
        # wide matrices scroll inside their own box
        box = page.locator("#steps article[data-step=token_embeddings] .matrix-scroll")
        assert box.evaluate("b => b.scrollWidth > b.clientWidth")
        assert submit(page, num_heads=10) == "error"
        expect(page.locator("#num_heads-error")).to_be_visible()
        assert no_horizontal_scroll(page, 390)
        page.screenshot(path=str(artifacts / "final.png"))
    finally:
        context.close()


def test_an_api_key_is_asked_for_and_then_sent(page: Page, tmp_path: Path, artifacts: Path) -> None:
    with running_server(env={"ATTENTION_API_KEYS": "secret"}, log_dir=tmp_path) as server:
        assert open_explorer(page, server.base_url) == "error"
        error = page.locator("#api_key-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("401")
        expect(page.locator("#form-error")).to_contain_text("API key")
        expect(page.locator(HEAD_CARDS)).to_have_count(0)
        page.screenshot(path=str(artifacts / "401.png"), full_page=True)

        page.fill("#api_key", "wrong")
        assert submit(page) == "error"
        expect(error).to_contain_text("401")

        page.fill("#api_key", "secret")
        before = generation(page)
        page.locator("#api_key").press("Enter")
        assert wait_settled(page, before) == "ready"
        expect(error).to_be_hidden()
        expect(page.locator(HEAD_CARDS)).to_have_count(4)
        assert page.evaluate("sessionStorage.getItem('attention-explorer.api-key')") == "secret"

        # the key outlives a reload of the tab, and the first request uses it
        page.reload()
        assert wait_settled(page, 0) == "ready"
        expect(page.locator("#api_key")).to_have_value("secret")
        page.screenshot(path=str(artifacts / "with-key.png"))
        page.goto("about:blank")  # drop the keep-alive connection: the server stops at once
