"""The explorer with a pretrained model: the model selector, the layer × head grid, the chosen
layer in every view, the rollout and the special-token shares, driven in Chromium."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.explorer_page import (
    DEFAULT_TEXT,
    HEAD_CARDS,
    PRETRAINED_STEPS,
    THUMBS,
    cell_values,
    choose_model,
    close_to,
    column_labels,
    layer_steps_body,
    no_horizontal_scroll,
    open_explorer,
    open_settings,
    pretrained_body,
    row_labels,
    submit,
    thumbnail,
    wait_steps,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.browser

DETAIL = "#model-detail figure"
NUMBER_AT_END = r"-?\d+(?:\.\d+)?(?:e-?\d+)?$"


def post(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/attention", json=body, timeout=60)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture(scope="module")
def default_result(live_server: RunningServer, model: dict[str, Any]) -> dict[str, Any]:
    """The service's answer to the page's request for the default sentence, fetched once."""
    result: dict[str, Any] = post(live_server.base_url, pretrained_body(model["name"]))
    return result


def show_pretrained(page: Page, base_url: str, name: str, text: str | None = None) -> None:
    """Load the page, choose the model and compute; the body sent is checked on the way."""
    open_explorer(page, base_url)
    choose_model(page, name)
    with page.expect_request("**/attention") as sent:
        assert submit(page, text) == "ready"
    assert sent.value.post_data_json == pretrained_body(name, text or DEFAULT_TEXT)


def tooltip_number(page: Page) -> float:
    tooltip = page.locator("#tooltip")
    expect(tooltip).to_be_visible()
    shown = re.findall(NUMBER_AT_END, tooltip.inner_text())
    assert shown, tooltip.inner_text()
    return float(shown[0])


def test_the_model_selector_offers_the_pretrained_model_and_hides_the_fixed_fields(
    page: Page, live_server: RunningServer, model: dict[str, Any]
) -> None:
    open_explorer(page, live_server.base_url)
    choose_model(page, "random")
    values = page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
    assert values == ["random", model["name"]]
    expect(page.locator("#model")).to_have_value("random")
    expect(page.locator("#heads-config")).to_be_visible()
    expect(page.locator("#model-note")).to_be_hidden()

    choose_model(page, model["name"])
    expect(page.locator("#heads-config")).to_be_hidden()
    expect(page.locator("#d_model")).to_be_disabled()
    note = page.locator("#model-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text(f"{model['layers']} layers × {model['heads']} heads")
    expect(note).to_contain_text(f"d_model {model['d_model']}")
    expect(page.locator("#text-hint")).to_contain_text("[CLS]")

    # back to random: the fields return, and so does the one-layer view
    choose_model(page, "random")
    expect(page.locator("#heads-config")).to_be_visible()
    expect(page.locator("#d_model")).to_be_enabled()


def test_the_model_view_draws_every_layer_and_head_with_wordpiece_labels(
    page: Page,
    live_server: RunningServer,
    model: dict[str, Any],
    default_result: dict[str, Any],
    artifacts: Path,
) -> None:
    show_pretrained(page, live_server.base_url, model["name"])
    result = default_result["results"][0]
    tokens = result["tokens"]
    layers, heads = model["layers"], model["heads"]
    assert tokens[0] == "[CLS]"
    assert tokens[-1] == "[SEP]"
    expect(page.locator("#status")).to_contain_text(
        f"{layers} layers × {heads} heads over {len(tokens)} tokens"
    )
    expect(page.locator("#tab-model")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-model")).to_be_visible()
    expect(page.locator("#layer-bar")).to_be_visible()
    assert page.locator("#summary .chip").all_inner_texts() == tokens

    # the grid: layers × heads thumbnails, each named for screen readers
    expect(page.locator(THUMBS)).to_have_count(layers * heads)
    labels = page.eval_on_selector_all(
        THUMBS, "bs => bs.map(b => [b.dataset.layer, b.dataset.head, b.getAttribute('aria-label')])"
    )
    for layer, head, label in labels:
        assert label.startswith(f"Layer {layer}, head {head}: entropy ")
    assert row_labels(page, "#model-grid") == [f"Layer {k}" for k in range(layers)]
    assert column_labels(page, "#model-grid") == [f"H{h}" for h in range(heads)]
    expect(page.locator(f"{THUMBS}[tabindex='0']")).to_have_count(1)  # one Tab stop
    expect(page.locator(f"{THUMBS}[aria-current=true]")).to_have_count(1)

    # WordPieces, [CLS] and [SEP] included, label the axes of the large view and the heads
    assert row_labels(page, f"{DETAIL} table") == tokens
    assert column_labels(page, f"{DETAIL} table") == tokens
    page.click("#tab-heads")
    expect(page.locator(HEAD_CARDS)).to_have_count(heads)
    for head in (0, heads - 1):
        table = f"{HEAD_CARDS}[data-head='{head}'] table"
        assert row_labels(page, table) == tokens
        assert column_labels(page, table) == tokens
        expect(page.locator(f"{HEAD_CARDS}[data-head='{head}'] h3")).to_have_text(
            f"Layer 0, head {head}"
        )
    page.click("#tab-model")
    page.screenshot(path=str(artifacts / "model-view.png"), full_page=True)

    # a random request afterwards brings the one-layer page back
    choose_model(page, "random")
    assert submit(page) == "ready"
    expect(page.locator("#tab-model")).to_be_hidden()
    expect(page.locator("#layer-bar")).to_be_hidden()
    expect(page.locator("#panel-heads")).to_be_visible()
    expect(page.locator(HEAD_CARDS)).to_have_count(4)


def test_a_chosen_layer_and_head_shows_the_exact_values_of_the_response(
    page: Page, live_server: RunningServer, model: dict[str, Any], default_result: dict[str, Any]
) -> None:
    show_pretrained(page, live_server.base_url, model["name"])
    result = default_result["results"][0]
    attention, metrics = result["attention"], result["metrics"]
    layer, head = 3, 4

    page.click(thumbnail(layer, head))
    expect(page.locator(thumbnail(layer, head))).to_have_attribute("aria-current", "true")
    expect(page.locator("#layer")).to_have_value(str(layer))
    expect(page.locator(f"{DETAIL} h3")).to_have_text(f"Layer {layer}, head {head}")
    assert cell_values(page, f"{DETAIL} table") == attention[layer][head]
    cell = page.locator(f"{DETAIL} td[data-query='2'][data-key='5']")
    cell.hover()
    assert tooltip_number(page) == attention[layer][head][2][5]
    readout = page.locator(f"{DETAIL} .readout")
    expect(readout).to_contain_text(f"“{result['tokens'][2]}”")
    detail_metrics = page.locator(f"{DETAIL} .metrics")
    assert (
        float(detail_metrics.get_attribute("data-entropy") or "nan")
        == (metrics["entropy"][layer][head])
    )
    share = result["analysis"]["special_share"]["[CLS]"][layer][head]
    assert float(detail_metrics.get_attribute("data-cls") or "nan") == share

    # the chosen layer's metrics table, one row per head
    rows = page.locator("#layer-metrics tbody tr")
    expect(rows).to_have_count(model["heads"])
    expect(page.locator("#layer-metrics-title")).to_have_text(f"Layer {layer}: per-head metrics")
    entropies = page.eval_on_selector_all(
        "#layer-metrics tbody tr td:nth-of-type(1)", "ts => ts.map(t => Number(t.dataset.value))"
    )
    assert entropies == metrics["entropy"][layer]
    expect(page.locator("#layer-metrics tr.current")).to_have_attribute("data-head", str(head))

    # keyboard: arrows move in the grid, Enter opens
    page.locator(thumbnail(layer, head)).focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    expect(page.locator(thumbnail(layer + 1, head + 1))).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(f"{DETAIL} h3")).to_have_text(f"Layer {layer + 1}, head {head + 1}")
    assert cell_values(page, f"{DETAIL} table") == attention[layer + 1][head + 1]
    opened = f"Layer {layer + 1}, head {head + 1}"
    expect(page.locator("#model-grid-readout")).to_contain_text(opened)

    # the Heads tab now shows that layer: a hovered cell there is the JSON's number too
    page.click("#tab-heads")
    card = f"{HEAD_CARDS}[data-head='{head}']"
    expect(page.locator(card)).to_have_attribute("data-layer", str(layer + 1))
    assert cell_values(page, f"{card} table") == attention[layer + 1][head]
    page.locator(f"{card} td[data-query='7'][data-key='9']").hover()
    assert tooltip_number(page) == attention[layer + 1][head][7][9]
    average = cell_values(page, "#heatmaps figure[data-kind=average] table")
    expected = attention[layer + 1]
    for i, row in enumerate(average):
        for j, value in enumerate(row):
            mean = sum(matrix[i][j] for matrix in expected) / len(expected)
            assert close_to(value, mean, 1e-6)


def test_the_rollout_and_the_special_token_shares_are_drawn_from_the_analysis(
    page: Page, live_server: RunningServer, model: dict[str, Any], default_result: dict[str, Any]
) -> None:
    show_pretrained(page, live_server.base_url, model["name"])
    result = default_result["results"][0]
    analysis, tokens = result["analysis"], result["tokens"]
    length = len(tokens)

    rollout = page.locator("#rollout")
    expect(rollout).to_be_visible()
    expect(rollout.locator("h3")).to_contain_text("rollout")
    expect(rollout.locator(".matrix-explain")).to_contain_text("Abnar")
    expect(rollout.locator("td[role=gridcell]")).to_have_count(length * length)
    assert cell_values(page, "#rollout table") == analysis["rollout"]
    assert row_labels(page, "#rollout table") == tokens
    assert column_labels(page, "#rollout table") == tokens

    for token, slug in (("[CLS]", "cls"), ("[SEP]", "sep")):
        table = f"#share-{slug} table"
        assert cell_values(page, table) == analysis["special_share"][token]
        assert row_labels(page, table) == [f"Layer {k}" for k in range(model["layers"])]


def test_the_layer_selector_chooses_what_heads_connections_and_steps_show(
    page: Page,
    live_server: RunningServer,
    model: dict[str, Any],
    default_result: dict[str, Any],
    artifacts: Path,
) -> None:
    name = model["name"]
    show_pretrained(page, live_server.base_url, name)
    length = len(default_result["results"][0]["tokens"])
    heads, d_model, head_dim = model["heads"], model["d_model"], model["head_dim"]
    shapes = {
        "inputs": f"{length} × {d_model}",
        "q": f"{heads} × {length} × {head_dim}",
        "k": f"{heads} × {length} × {head_dim}",
        "v": f"{heads} × {length} × {head_dim}",
        "scores": f"{heads} × {length} × {length}",
        "scaled_scores": f"{heads} × {length} × {length}",
        "masked_scores": f"{heads} × {length} × {length}",
        "attention": f"{heads} × {length} × {length}",
        "head_outputs": f"{heads} × {length} × {head_dim}",
        "concat": f"{length} × {heads * head_dim}",
        "output": f"{length} × {d_model}",
    }

    # the steps of a layer are asked for when the panel shows them, one layer per request
    with page.expect_request("**/attention") as sent:
        page.click("#tab-steps")
    assert sent.value.post_data_json == layer_steps_body(name, 0)
    wait_steps(page, 0)
    steps = page.locator("#steps article.step")
    assert [s.get_attribute("data-step") for s in steps.all()] == PRETRAINED_STEPS
    for step, shape in shapes.items():
        badge = page.locator(f"#steps article[data-step={step}] .shape")
        expect(badge).to_have_attribute("data-shape", shape)
    layer0 = post(live_server.base_url, layer_steps_body(name, 0))["results"][0]["steps"]
    q_table = "#steps article[data-step=q] table"
    assert cell_values(page, q_table) == layer0["q"][0][0]
    expect(page.locator("#steps-layer")).to_contain_text("Layer 0 (of 0–")

    # another layer: a new request, that layer's numbers and labels, the same shapes
    with page.expect_request("**/attention") as sent:
        page.select_option("#layer", "4")
    assert sent.value.post_data_json == layer_steps_body(name, 4)
    wait_steps(page, 4)
    layer4 = post(live_server.base_url, layer_steps_body(name, 4))["results"][0]["steps"]
    page.select_option("#step-head", "7")
    expect(page.locator(q_table)).to_have_attribute("data-head", "7")
    assert cell_values(page, q_table) == layer4["q"][0][7]
    assert cell_values(page, "#steps article[data-step=concat] table") == layer4["concat"][0]
    assert layer4["q"][0][7] != layer0["q"][0][7]
    for step, shape in shapes.items():
        badge = page.locator(f"#steps article[data-step={step}] .shape")
        expect(badge).to_have_attribute("data-shape", shape)
    expect(page.locator("#steps-layer")).to_contain_text("Layer 4 (of 0–")
    expect(page.locator("#steps article[data-step=inputs] .step-explain")).to_contain_text(
        "output of layer 3"
    )
    expect(page.locator(q_table)).to_have_attribute("aria-label", re.compile(r"^Layer 4: "))
    page.locator("#steps article[data-step=q]").screenshot(path=str(artifacts / "steps-q.png"))

    # a layer seen before comes from the page's cache: no request
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if r.url.endswith("/attention") else None)
    page.select_option("#layer", "0")
    wait_steps(page, 0)
    assert cell_values(page, "#steps article[data-step=concat] table") == layer0["concat"][0]
    assert requests == []

    # the same selector drives the Heads and Connections views
    page.select_option("#layer", "2")
    page.click("#tab-heads")
    expect(page.locator(f"{HEAD_CARDS}[data-head='0'] h3")).to_have_text("Layer 2, head 0")
    page.click("#tab-connections")
    # head 7, chosen in Steps above: one head choice for every view
    expect(page.locator("#conn-caption")).to_contain_text("Layer 2, head 7")


def test_whole_words_merge_the_wordpieces(
    page: Page, live_server: RunningServer, model: dict[str, Any]
) -> None:
    text = "Tokenization is unbelievably fun"
    show_pretrained(page, live_server.base_url, model["name"], text)
    result = post(live_server.base_url, pretrained_body(model["name"], text))["results"][0]
    assert len(result["tokens"]) > len(result["analysis"]["words"])  # some words were split
    words = result["analysis"]["words"]
    page.check("#word-level")
    detail = f"{DETAIL} table"
    assert row_labels(page, detail) == words
    assert cell_values(page, detail) == result["analysis"]["word_attention"][0][0]
    expect(page.locator(f"{THUMBS}")).to_have_count(model["layers"] * model["heads"])
    page.click("#tab-heads")
    assert column_labels(page, f"{HEAD_CARDS}[data-head='2'] table") == words
    # the rollout stays in WordPieces
    assert row_labels(page, "#rollout table") == result["tokens"]
    page.uncheck("#word-level")
    assert row_labels(page, f"{HEAD_CARDS}[data-head='2'] table") == result["tokens"]


def test_the_model_view_fits_a_390_pixel_screen(
    browser: Browser, live_server: RunningServer, model: dict[str, Any], artifacts: Path
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        show_pretrained(page, live_server.base_url, model["name"])
        assert no_horizontal_scroll(page, 390)
        grid = page.locator("#model-grid").locator("xpath=..")
        assert grid.evaluate("b => b.scrollWidth > b.clientWidth"), "the grid should scroll inside"
        page.locator(thumbnail(5, 11)).focus()  # the last thumbnail scrolls into its box
        assert no_horizontal_scroll(page, 390)
        page.screenshot(path=str(artifacts / "model-view.png"), full_page=True)
        for tab in ("heads", "connections", "steps"):
            page.click(f"#tab-{tab}")
            if tab == "steps":
                wait_steps(page, 0)
            assert no_horizontal_scroll(page, 390), f"the {tab} panel scrolls sideways"
        page.screenshot(path=str(artifacts / "final.png"))
    finally:
        context.close()


def test_a_sentence_too_long_for_the_model_is_said_before_it_is_sent(
    page: Page, live_server: RunningServer, model: dict[str, Any]
) -> None:
    """The page knows max_tokens from GET /models: the note and its "cut" box come before any
    request; with the box cleared, the refusal is a choice to cut, not a red error."""
    open_explorer(page, live_server.base_url)
    choose_model(page, model["name"])
    limit = model["max_tokens"]
    page.fill("#text", " ".join(["word"] * (limit + 1)))
    note = page.locator("#text-length")
    expect(note).to_be_visible()
    expect(note).to_contain_text(f"more than the {limit} the model reads")
    expect(page.locator("#truncate-text")).to_be_checked()
    page.uncheck("#truncate-text")
    assert submit(page) == "error"
    expect(page.locator("#text-error")).to_be_hidden()
    expect(page.locator("#form-error")).to_be_hidden()
    expect(page.locator("#status")).not_to_contain_text("Error")
    expect(page.locator("#truncate-submit")).to_have_text(f"Cut to {limit} tokens and compute")
    expect(page.locator("#truncation")).to_contain_text("longer than")
    expect(page.locator("#stale-note")).to_be_visible()  # the random result stays


def test_an_unavailable_pretrained_model_is_listed_disabled_with_the_reason(
    page: Page, live_server: RunningServer
) -> None:
    reason = "no model folder: install the 'model' extra"

    def without_model(route: Route) -> None:
        listing = {"models": [{"name": "random", "kind": "seeded", "layers": 1}]}
        route.fulfill(json={**listing, "unavailable": reason})

    page.route("**/models", without_model)
    assert open_explorer(page, live_server.base_url) == "ready"
    page.wait_for_function("() => document.getElementById('model').dataset.loaded === 'true'")
    option = page.locator("#model option[data-unavailable=true]")
    expect(option).to_have_count(1)
    expect(option).to_be_disabled()
    expect(option).to_contain_text("unavailable")
    expect(page.locator("#model")).to_have_value("random")
    expect(page.locator("#models-unavailable summary")).to_have_text("1 model unavailable")
    expect(page.locator("#models-unavailable")).to_contain_text(reason)
    open_settings(page)  # folded after the first result
    expect(page.locator("#heads-config")).to_be_visible()
