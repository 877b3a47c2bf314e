"""Issue 15's views: the pipeline strip at the top of the results with the random model's
weights (W_Q, W_K, W_V, W_O as the API returns them), and SVG / PNG exports of the strip and of
the layer × head grid, named for the model, seed, layers and heads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.explorer_page import (
    assert_accessible,
    cell_values,
    choose_model,
    open_explorer,
    request_body,
    submit,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.browser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def post(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/attention", json=body, timeout=60)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def top_of(page: Page, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not drawn"
    return box["y"]


def test_the_pipeline_strip_heads_the_results_and_opens_its_step(
    page: Page, live_server: RunningServer
) -> None:
    assert open_explorer(page, live_server.base_url) == "ready"
    # above the tabs and every panel, whichever tab is open
    assert page.locator("#panel-steps #pipeline").count() == 0
    assert top_of(page, "#pipeline-fold") < top_of(page, "[role=tablist]")
    # folded to one line, so that the first head stays on the first screen; a click unfolds it
    expect(page.locator("#pipeline")).to_be_hidden()
    page.click("#pipeline-fold > summary")
    expect(page.locator("#pipeline")).to_be_visible()
    expect(page.locator("#pipeline .strip-box")).to_have_count(11)
    expect(page.locator("#pipeline .strip-box[data-step=q] .strip-shape")).to_have_text(
        "4 × 10 × 16"
    )
    page.click("#pipeline .strip-box[data-step=attention]")
    expect(page.locator("#tab-steps")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#steps article[data-step=attention]")).to_be_in_viewport()


def test_the_weights_are_the_ones_the_api_returns(page: Page, live_server: RunningServer) -> None:
    body = request_body(num_kv_heads=2, seed=4)
    # asked for on the first click, not with every answer
    weights_body = {**body, "output": {"attention": "none", "precision": 4, "parameters": True}}
    parameters = post(live_server.base_url, weights_body)["parameters"]
    packed = parameters["in_proj_weight"]  # 64 query rows, then 32 key rows, then 32 value rows
    bias = parameters["in_proj_bias"]
    assert open_explorer(page, live_server.base_url) == "ready"
    with page.expect_request("**/attention") as sent:
        assert submit(page, num_kv_heads=2, seed=4) == "ready"
    assert sent.value.post_data_json == body
    page.click("#pipeline-fold > summary")
    buttons = page.locator("#pipeline .weight-button")
    expect(buttons).to_have_text(["W_Q 64 × 64", "W_K 32 × 64", "W_V 32 × 64", "W_O 64 × 64"])
    expected = {
        "w_q": [*packed[:64], bias[:64]],
        "w_k": [*packed[64:96], bias[64:96]],
        "w_v": [*packed[96:], bias[96:]],
        "w_o": [*parameters["out_proj.weight"], parameters["out_proj.bias"]],
    }
    with page.expect_request("**/attention") as asked:
        page.click("#pipeline .weight-button[data-weight=w_q]")
    assert asked.value.post_data_json == weights_body
    page.wait_for_function("() => document.getElementById('weights').dataset.state === 'ready'")
    for name, matrix in expected.items():
        button = page.locator(f"#pipeline .weight-button[data-weight={name}]")
        if name != "w_q":  # W_Q is open already: a second click would close it
            button.click()
        expect(button).to_have_attribute("aria-pressed", "true")
        assert cell_values(page, f"#weights figure[data-weight={name}] table") == matrix, name
    assert_accessible(page, "W_O open under the pipeline strip")


def test_the_strip_exports_name_the_model_seed_and_head(
    page: Page, live_server: RunningServer, artifacts: Path
) -> None:
    assert open_explorer(page, live_server.base_url) == "ready"
    page.click("#tab-steps")
    page.select_option("#step-head", "2")  # the head chosen in every view, the strip's too
    with page.expect_download() as download:
        page.click("#pipeline-exports button[data-download=svg]")
    name = download.value.suggested_filename
    assert name == "attention-random-seed0-pipeline-head-2.svg"
    download.value.save_as(artifacts / name)
    svg = (artifacts / name).read_text()
    for wanted in ("model random", "seed 0", "<metadata>", "head 2"):
        assert wanted in svg
    assert svg.count('rx="8"') == 11  # one box per step
    assert "4 × 10 × 16" in svg  # the real shapes
    with page.expect_download() as png:
        page.click("#pipeline-exports button[data-download=png]")
    assert png.value.suggested_filename == "attention-random-seed0-pipeline-head-2.png"
    png.value.save_as(artifacts / "strip.png")
    assert (artifacts / "strip.png").read_bytes().startswith(PNG_MAGIC)


def test_the_grid_exports_every_layer_and_head_of_a_decoder(
    page: Page, decoder_server: RunningServer, artifacts: Path
) -> None:
    open_explorer(page, decoder_server.base_url)
    assert choose_model(page, "tiny-llama") == "ready"
    page.click("#tab-model")
    with page.expect_download() as download:
        page.click("#model-grid-exports button[data-download=svg]")
    name = download.value.suggested_filename
    assert name == "attention-tiny-llama-layers-0-1-x-heads-0-3.svg"
    download.value.save_as(artifacts / name)
    svg = (artifacts / name).read_text()
    assert "model tiny-llama" in svg
    for layer in range(2):
        for head in range(4):
            assert f"<title>Layer {layer}, head {head}</title>" in svg
    with page.expect_download() as png:
        page.click("#model-grid-exports button[data-download=png]")
    png.value.save_as(artifacts / "grid.png")
    assert (artifacts / "grid.png").read_bytes().startswith(PNG_MAGIC)
    # a decoder's answer has no weights: the strip says why
    expect(page.locator("#pipeline [data-part=weight-buttons]")).to_contain_text(
        "random model only"
    )


def wait_compared(page: Page, state: str = "ready") -> None:
    page.wait_for_function(
        "s => document.getElementById('panel-compare').dataset.state === s", arg=state
    )


def difference_values(page: Page) -> list[list[float | None]]:
    return cell_values(page, "#compare-maps figure[data-kind=difference] table")


def test_compare_two_sentences_of_the_same_length_cell_by_cell(
    page: Page, live_server: RunningServer
) -> None:
    other = "The woman who passes the sentence should swing the axe"
    a = post(live_server.base_url, request_body())["results"][0]["attention"]
    b = post(live_server.base_url, request_body(other))["results"][0]["attention"]
    assert open_explorer(page, live_server.base_url) == "ready"
    page.click("#tab-compare")
    page.check("#panel-compare input[value=sentence]")
    page.fill("#compare-text", other)
    with page.expect_request("**/attention") as sent:
        page.click("#compare-submit")
    wait_compared(page)
    assert sent.value.post_data_json == request_body(other)
    page.select_option("#compare-a", "0:2")
    page.select_option("#compare-b", "0:2")
    cards = page.locator("#compare-maps figure")
    expect(cards).to_have_count(3)
    expect(cards.nth(1).locator("h3")).to_contain_text(f"B: Head 2 (“{other}”)")
    assert cell_values(page, "#compare-maps figure[data-kind=head] >> nth=1 >> table") == b[2]
    expect(page.locator("#compare-note")).to_contain_text("same number of tokens (10)")
    expected = [
        [round(x - y, 12) for x, y in zip(r, s, strict=True)]
        for r, s in zip(a[2], b[2], strict=True)
    ]
    shown = [[round(v or 0.0, 12) for v in row] for row in difference_values(page)]
    assert shown == expected
    assert_accessible(page, "two sentences compared")


def test_compare_sentences_of_different_lengths_says_how_they_are_aligned(
    page: Page, live_server: RunningServer
) -> None:
    assert open_explorer(page, live_server.base_url) == "ready"
    page.click("#tab-compare")
    page.check("#panel-compare input[value=sentence]")
    page.fill("#compare-text", "The man swings the sword")
    page.click("#compare-submit")
    wait_compared(page)
    expect(page.locator("#compare-note")).to_be_visible()
    expect(page.locator("#compare-note")).to_contain_text("A: 10, B: 5 tokens")
    assert len(difference_values(page)) == 5  # the positions both have
    labels = page.locator("#compare-maps figure[data-kind=difference] thead th").all_inner_texts()
    assert any("|" in label for label in labels)  # "who | swings": A's token, then B's


def test_compare_two_models_the_random_one_with_two_seeds(
    page: Page, live_server: RunningServer
) -> None:
    b = post(live_server.base_url, request_body(seed=7))["results"][0]["attention"]
    assert open_explorer(page, live_server.base_url) == "ready"
    page.click("#tab-compare")
    page.check("#panel-compare input[value=model]")
    page.select_option("#compare-model", "random")
    page.fill("#compare-seed", "7")
    with page.expect_request("**/attention") as sent:
        page.click("#compare-submit")
    wait_compared(page)
    assert sent.value.post_data_json == request_body(seed=7)
    page.select_option("#compare-b", "0:1")
    expect(page.locator("#compare-maps figure h3").nth(1)).to_contain_text("random, seed 7")
    assert cell_values(page, "#compare-maps figure[data-kind=head] >> nth=1 >> table") == b[1]
    assert_accessible(page, "two seeds of the random model compared")
