"""The explorer with decoder folders of ATTENTION_MODELS_DIR: every model of GET /models in the
selector, the prompt drawn causally (and within a sliding window), generation token by token
with each token's attention as the API returns it, and a 32 × 32 layer × head grid on a phone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import WIDE_DECODER
from tests.browser.explorer_page import (
    DEFAULT_TEXT,
    HEAD_CARDS,
    THUMBS,
    assert_accessible,
    cell_values,
    choose_model,
    no_horizontal_scroll,
    open_explorer,
    open_settings,
    submit,
    thumbnail,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.browser

PROMPT = "once upon a time there was an old king"
GENERATED = "#generated button.gen-token"


def decoder_body(name: str, text: str) -> dict[str, Any]:
    """The body the page sends for a decoder: every layer, no encoder analysis."""
    output = {"attention": "per_head", "precision": 4, "metrics": True}
    return {"model": name, "text": text, "layers": "all", "output": output}


def generate_body(name: str, text: str, **generate: Any) -> dict[str, Any]:
    """The body the Generate tab sends."""
    settings = {"max_new_tokens": 8, "temperature": 0, "seed": 0, "top_k": None, "top_p": None}
    output = {"attention": "per_head", "precision": 4}
    return {"model": name, "text": text, "layers": "all", "output": output,
            "generate": {**settings, **generate}}  # fmt: skip


def post(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/attention", json=body, timeout=120)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def models_of(base_url: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = httpx.get(f"{base_url}/models", timeout=30).json()["models"]
    return listed


def show_decoder(page: Page, base_url: str, name: str, text: str = PROMPT) -> None:
    """Load the page, choose the decoder and compute `text`; the body sent is checked."""
    open_explorer(page, base_url)
    assert choose_model(page, name) == "ready"
    with page.expect_request("**/attention") as sent:
        assert submit(page, text) == "ready"
    assert sent.value.post_data_json == decoder_body(name, text)


def wait_generated(page: Page, state: str) -> None:
    """Wait for the Generate tab's request to settle in `state` (ready or error)."""
    page.wait_for_function(
        "s => document.getElementById('panel-generate').dataset.state === s", arg=state
    )


def masked_as_the_mask_says(
    shown: list[list[float | None]], sent: list[list[float]], window: int | None
) -> None:
    """Cells the mask hides are null on the page (and 0 in the API); the others the API's."""
    for i, row in enumerate(shown):
        for j, value in enumerate(row):
            hidden = j > i or (window is not None and i - j >= window)
            if hidden:
                assert value is None, (i, j, value)
                assert sent[i][j] == 0.0
            else:
                assert value == sent[i][j], (i, j)


def test_the_selector_lists_every_model_with_its_architecture_and_why_one_is_unavailable(
    page: Page, decoder_server: RunningServer
) -> None:
    listed = models_of(decoder_server.base_url)
    open_explorer(page, decoder_server.base_url)
    page.wait_for_function("() => document.getElementById('model').dataset.loaded === 'true'")
    open_settings(page)
    options = page.locator("#model option")
    assert options.evaluate_all("os => os.map(o => o.value)") == [m["name"] for m in listed]
    for entry in listed:
        option = page.locator(f"#model option[value='{entry['name']}']")
        text = option.inner_text()
        if entry.get("status") == "unavailable":
            assert option.is_disabled()
            assert entry["reason"] in text
        elif entry["kind"] == "decoder":
            assert not option.is_disabled()
            assert f"{entry['architecture']} decoder, {entry['layers']} layers" in text
    # the reasons are folded under one line, not spelled out in the chosen model's hint
    broken = [m for m in listed if m.get("status") == "unavailable"]
    assert broken, "the fixture has a broken folder"
    fold = page.locator("#models-unavailable")
    expect(fold.locator("summary")).to_have_text(
        f"{len(broken)} model{'' if len(broken) == 1 else 's'} unavailable"
    )
    for entry in broken:
        assert entry["reason"] not in page.inner_text("#model-hint")
    fold.locator("summary").click()
    for entry in broken:
        expect(fold).to_contain_text(entry["reason"])
    assert_accessible(page, "the model selector listing decoders")


def test_a_decoder_has_its_facts_in_the_hint_no_whole_words_and_one_layer_in_the_singular(
    page: Page, decoder_server: RunningServer
) -> None:
    """The tester's defects: a 15-line hint of every broken folder, the disabled whole-words box
    shown for a decoder, "1 layers"."""
    listed = models_of(decoder_server.base_url)
    one_layer = [{**m, "layers": 1} if m["name"] == "tiny-mistral" else m for m in listed]
    page.route("**/models", lambda route: route.fulfill(json={"models": one_layer}))
    show_decoder(page, decoder_server.base_url, "tiny-llama")
    open_settings(page)
    expect(page.locator("#model option[value='tiny-mistral']")).to_contain_text("decoder, 1 layer)")
    hint = page.inner_text("#model-hint")
    assert "decoder" in hint
    for entry in listed:
        if entry.get("reason"):
            assert entry["reason"] not in hint
    expect(page.locator("#models-unavailable")).to_be_visible()
    expect(page.locator("#layer-bar")).to_be_visible()
    expect(page.locator("#word-toggle")).to_be_hidden()
    assert_accessible(page, "a decoder with its hint and no whole-words box")


def test_a_decoder_prompt_is_drawn_causally_with_the_api_weights(
    page: Page, decoder_server: RunningServer
) -> None:
    answer = post(decoder_server.base_url, decoder_body("tiny-llama", PROMPT))
    attention = answer["results"][0]["attention"]
    show_decoder(page, decoder_server.base_url, "tiny-llama")
    expect(page.locator("#tab-model")).to_be_visible()
    expect(page.locator("#tab-generate")).to_be_visible()
    expect(page.locator(THUMBS)).to_have_count(2 * 4)
    page.click(thumbnail(1, 3))
    masked_as_the_mask_says(cell_values(page, "#model-detail figure table"), attention[1][3], None)
    # no [CLS] / [SEP] columns and a note instead of the encoder's rollout
    assert "[CLS]" not in page.inner_text("#layer-metrics")
    expect(page.locator("#rollout-slot")).to_contain_text("encoder only")
    page.click("#tab-heads")
    card = f"{HEAD_CARDS}[data-head='2'] table"
    masked_as_the_mask_says(cell_values(page, card), attention[1][2], None)
    assert_accessible(page, "a decoder's prompt drawn causally")


def test_a_sliding_window_is_drawn_masked_too(page: Page, decoder_server: RunningServer) -> None:
    entry = next(m for m in models_of(decoder_server.base_url) if m["name"] == "tiny-mistral")
    window = entry["sliding_windows"][0]
    assert window == 3
    answer = post(decoder_server.base_url, decoder_body("tiny-mistral", PROMPT))
    show_decoder(page, decoder_server.base_url, "tiny-mistral")
    page.click(thumbnail(0, 1))
    shown = cell_values(page, "#model-detail figure table")
    masked_as_the_mask_says(shown, answer["results"][0]["attention"][0][1], window)


def test_generation_shows_each_token_and_its_attention_as_the_api_returns_it(
    page: Page, decoder_server: RunningServer
) -> None:
    base_url = decoder_server.base_url
    show_decoder(page, base_url, "tiny-llama")
    page.click("#tab-generate")
    assert_accessible(page, "the Generate tab before generating")
    page.fill("#gen-max_new_tokens", "5")
    page.fill("#gen-seed", "3")
    with page.expect_request("**/attention") as sent:
        page.click("#generate-submit")
    wait_generated(page, "ready")
    expected = generate_body("tiny-llama", PROMPT, max_new_tokens=5, seed=3)
    assert sent.value.post_data_json == expected
    result = post(base_url, expected)["results"][0]
    generation = result["generation"]
    assert generation["stop_reason"] == "length"
    expect(page.locator(GENERATED)).to_have_count(5)
    chip_texts = page.locator("#generated .gen-chip.prompt").all_inner_texts()
    assert chip_texts == result["tokens"]
    page.locator(GENERATED).nth(2).click()
    expect(page.locator(GENERATED).nth(2)).to_have_attribute("aria-pressed", "true")
    table = page.locator("#generate-detail table.gen-attention")
    expect(table).to_have_attribute("data-token", "2")
    summary = page.locator("#generate-detail .gen-summary")
    assert float(summary.get_attribute("data-logprob") or "nan") == generation["logprobs"][2]
    context = len(result["tokens"]) + 2  # the prompt and the two tokens before it
    for layer, heads in enumerate(generation["attention"][2]):
        for head, weights in enumerate(heads):
            assert len(weights) == context
            cells = table.locator(f"td[data-layer='{layer}'][data-head='{head}']")
            shown = cells.evaluate_all("cs => cs.map(c => Number(c.dataset.value))")
            assert shown == weights, (layer, head)
    assert_accessible(page, "a generated token's attention")


def test_a_generation_error_names_the_field(page: Page, decoder_server: RunningServer) -> None:
    show_decoder(page, decoder_server.base_url, "tiny-llama")
    page.click("#tab-generate")
    page.fill("#gen-temperature", "-1")
    page.click("#generate-submit")
    wait_generated(page, "error")
    expect(page.locator("#generate-error")).to_contain_text("temperature")
    expect(page.locator("#gen-temperature")).to_have_attribute("aria-invalid", "true")


def test_a_32_by_32_grid_fits_a_390_pixel_phone(
    browser: Browser, decoder_server: RunningServer, artifacts: Path
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        show_decoder(page, decoder_server.base_url, "wide-llama", DEFAULT_TEXT.lower())
        layers, heads = WIDE_DECODER["layers"], WIDE_DECODER["heads"]
        expect(page.locator(THUMBS)).to_have_count(layers * heads)
        assert page.get_attribute("#model-grid", "data-density") == "compact"
        assert no_horizontal_scroll(page, 390)
        box = page.locator("#model-grid").locator("xpath=..")
        assert box.evaluate("b => b.scrollWidth > b.clientWidth && b.scrollHeight > b.clientHeight")
        labels = page.locator("#model-grid tbody th.row-label").all_inner_texts()
        assert labels == [f"Layer {k}" for k in range(layers)]
        page.locator(thumbnail(layers - 1, heads - 1)).focus()
        assert no_horizontal_scroll(page, 390)
        page.screenshot(path=str(artifacts / "grid-32x32.png"), full_page=True)
        page.click("#tab-generate")
        page.click("#generate-submit")
        wait_generated(page, "ready")
        # 32 × 32 rows are too many at once: one layer is shown, the last
        assert page.input_value("#generate-layer") == str(layers - 1)
        assert no_horizontal_scroll(page, 390)
        assert_accessible(page, "a 32 × 32 decoder on a phone")
    finally:
        context.close()
