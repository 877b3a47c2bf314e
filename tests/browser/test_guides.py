"""Issue 15's guides: a result on the first screen, the tour on the seed sentence, the head search
with head types, and the state in the URL; on a desktop, a 390 px touch screen and the keyboard,
with axe-core run on every state."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.explorer_page import (
    HEAD_CARDS,
    THUMBS,
    assert_accessible,
    choose_model,
    generation,
    open_explorer,
    pretrained_body,
    request_body,
    submit,
    wait_settled,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.browser

WHO, MAN = 2, 1  # in the seed sentence, counted from 0
PHONE = {"width": 390, "height": 844}


def post(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/attention", json=body, timeout=60)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def best_head(attention: list[list[list[float]]], query: int, key: int) -> tuple[int, float]:
    scores = [matrix[query][key] for matrix in attention]
    best = max(range(len(scores)), key=scores.__getitem__)
    return best, scores[best]


@pytest.fixture
def phone(browser: Browser, artifacts: Path) -> Iterator[Page]:
    """A 390 px wide phone with a touch screen."""
    context = browser.new_context(
        viewport=PHONE, has_touch=True, is_mobile=True, device_scale_factor=2
    )
    page = context.new_page()
    yield page
    page.screenshot(path=str(artifacts / "final.png"))
    context.close()


def first_card_top(page: Page) -> float:
    top: float = page.eval_on_selector(
        f"{HEAD_CARDS}[data-head='0']", "e => e.getBoundingClientRect().top"
    )
    return top


def test_the_first_screen_shows_a_result_and_the_form_folds(
    page: Page, live_server: RunningServer
) -> None:
    assert open_explorer(page, live_server.base_url) == "ready"
    expect(page.locator("#form-more")).not_to_have_attribute("open", "")
    expect(page.locator("#form-more-facts")).to_contain_text("4 heads")
    table_top = page.eval_on_selector(
        f"{HEAD_CARDS}[data-head='0'] table", "e => e.getBoundingClientRect().top"
    )
    assert table_top < 900 - 100, "the first heatmap is not on the first screen"
    assert_accessible(page, "the first screen, desktop")


def test_on_a_phone_the_first_head_starts_on_the_first_screen(
    phone: Page, live_server: RunningServer
) -> None:
    assert open_explorer(phone, live_server.base_url) == "ready"
    assert first_card_top(phone) < PHONE["height"] - 40
    assert phone.evaluate("document.documentElement.scrollWidth <= 390")
    assert_accessible(phone, "the first screen, 390 px")


def test_a_folded_field_with_an_error_unfolds_and_takes_the_focus(
    page: Page, live_server: RunningServer
) -> None:
    assert open_explorer(page, live_server.base_url) == "ready"
    page.eval_on_selector("#num_heads", "e => { e.value = '10'; }")  # folded: set, not typed
    before = generation(page)
    page.locator("#text").press("Enter")
    assert wait_settled(page, before) == "error"
    expect(page.locator("#form-more")).to_have_attribute("open", "")
    expect(page.locator("#num_heads-error")).to_be_visible()
    expect(page.locator("#num_heads")).to_be_focused()
    assert_accessible(page, "an error in a folded field")


def test_the_tour_ends_at_the_head_where_who_attends_most_to_man_with_the_keyboard(
    page: Page, live_server: RunningServer
) -> None:
    answer = post(live_server.base_url, request_body())
    head, weight = best_head(answer["results"][0]["attention"], WHO, MAN)
    assert open_explorer(page, live_server.base_url) == "ready"
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")
    expect(page.locator("#tour-start")).to_be_focused()
    page.keyboard.press("Enter")
    for step in range(5):
        page.wait_for_function(
            "n => document.getElementById('tour').dataset.ready === String(n)", arg=step
        )
        assert_accessible(page, f"tour step {step + 1}")
        if step < 4:
            expect(page.locator("#tour [data-part=next]")).to_be_focused()
            page.keyboard.press("Enter")
    cell = page.locator(":focus")
    expect(cell).to_have_attribute("data-head", str(head))
    expect(cell).to_have_attribute("data-query", str(WHO))
    expect(cell).to_have_attribute("data-key", str(MAN))
    expect(page.locator("#tour [data-part=text]")).to_contain_text(f"Head {head}")
    expect(page.locator("#tour [data-part=text]")).to_contain_text(
        f"{round(weight * 100, 1)}%".replace(".0%", "%")
    )
    page.locator("#tour [data-part=close]").click()
    expect(page.locator("#tour")).to_be_hidden()


def test_the_search_ranks_every_head_and_opens_the_best_on_a_touch_screen(
    phone: Page, live_server: RunningServer
) -> None:
    page = phone
    answer = post(live_server.base_url, request_body())
    head, weight = best_head(answer["results"][0]["attention"], WHO, MAN)
    assert open_explorer(page, live_server.base_url) == "ready"
    page.locator("#search-title").tap()
    page.select_option("#search-query", str(WHO))
    page.select_option("#search-key", str(MAN))
    found = page.locator("#search-results button.found")
    expect(found).to_have_count(4)
    expect(found.first).to_have_attribute("data-head", str(head))
    expect(found.first).to_contain_text(f"Head {head} · ")
    expect(page.locator("#search-readout")).to_contain_text("4 heads ranked")
    expect(page.locator("#type-rules li")).to_have_count(7)
    assert_accessible(page, "the head search, 390 px")
    found.first.tap()
    cell = page.locator(":focus")
    expect(cell).to_have_attribute("data-head", str(head))
    assert float(cell.get_attribute("data-value") or "nan") == weight
    expect(page.locator(f"{HEAD_CARDS} .head-type")).to_have_count(4)


def test_head_types_follow_the_rules_shown(page: Page, live_server: RunningServer) -> None:
    assert open_explorer(page, live_server.base_url) == "ready"
    types = page.evaluate(
        """async () => {
            const { headType } = await import('/static/head-types.js');
            const n = 6;
            const matrix = (f) => Array.from({ length: n }, (_, i) =>
                Array.from({ length: n }, (_, j) => f(i, j)));
            return {
                previous: headType(matrix((i, j) => (j === Math.max(0, i - 1) ? 1 : 0))).type,
                next: headType(matrix((i, j) => (j === Math.min(n - 1, i + 1) ? 1 : 0))).type,
                sink: headType(matrix((i, j) => (j === 0 ? 1 : 0)), { pretrained: true }).type,
                broad: headType(matrix(() => 1 / n)).type,
                local: headType(matrix((i, j) => (j === i ? 1 : 0))).type,
            };
        }"""
    )
    assert types == {
        "previous": "previous-token",
        "next": "next-token",
        "sink": "[CLS] sink",
        "broad": "broad",
        "local": "local",
    }


def test_the_url_keeps_the_sentence_the_configuration_and_the_view(
    page: Page, browser: Browser, live_server: RunningServer
) -> None:
    assert open_explorer(page, live_server.base_url) == "ready"
    assert submit(page, "A cat sat on the mat", num_heads=2, seed=7, causal=True) == "ready"
    page.click("#tab-connections")
    page.select_option("#conn-head", "1")
    page.locator("#search-title").click()
    page.select_option("#search-query", "3")
    page.select_option("#search-key", "1")
    url = page.url
    assert "seed=7" in url
    assert "tab=connections" in url
    # a link opened elsewhere shows the same
    other = browser.new_page()
    try:
        assert open_explorer_at(other, url) == "ready"
        expect(other.locator("#text")).to_have_value("A cat sat on the mat")
        expect(other.locator("#seed")).to_have_value("7")
        expect(other.locator("#causal")).to_be_checked()
        expect(other.locator(HEAD_CARDS)).to_have_count(2)
        expect(other.locator("#tab-connections")).to_have_attribute("aria-selected", "true")
        expect(other.locator("#conn-head")).to_have_value("1")
        expect(other.locator("#search-key")).to_have_value("1")
        expect(other.locator("#search-results button.found")).to_have_count(2)
        assert other.url == url
        assert_accessible(other, "a page restored from its URL")
    finally:
        other.close()


def open_explorer_at(page: Page, url: str) -> str:
    page.goto(url)
    return wait_settled(page, 0)


@pytest.fixture(scope="module")
def pretrained_name(live_server: RunningServer) -> str:
    listing = httpx.get(f"{live_server.base_url}/models", timeout=30).json()
    names = [m["name"] for m in listing["models"] if m["kind"] == "pretrained"]
    if not names:
        pytest.skip(f"GET /models lists no pretrained model: {listing.get('unavailable')}")
    return str(names[0])


def test_the_search_ranks_every_head_of_a_pretrained_model_and_recolours_the_grid(
    page: Page, live_server: RunningServer, pretrained_name: str
) -> None:
    answer = post(live_server.base_url, pretrained_body(pretrained_name))
    result = answer["results"][0]
    who, man = result["tokens"].index("who"), result["tokens"].index("man")
    scores = [
        (matrix[who][man], layer, head)
        for layer, heads in enumerate(result["attention"])
        for head, matrix in enumerate(heads)
    ]
    weight, layer, head = max(scores)
    assert open_explorer(page, live_server.base_url) == "ready"
    assert choose_model(page, pretrained_name) == "ready"
    page.locator("#search-title").click()
    page.select_option("#search-query", str(who))
    page.select_option("#search-key", str(man))
    expect(page.locator(f"{THUMBS}.searched")).to_have_count(len(scores))
    expect(page.locator("#search-results button.found").first).to_contain_text(
        f"Layer {layer}, head {head} · "
    )
    assert_accessible(page, "the head search of a pretrained model")
    page.locator("#search-results button.found").first.click()
    expect(page.locator("#tab-model")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#model-detail h3")).to_have_text(f"Layer {layer}, head {head}")
    assert float(page.locator(":focus").get_attribute("data-value") or "nan") == weight


def test_the_pipeline_strip_shows_the_real_shapes_and_follows_one_query(
    page: Page, live_server: RunningServer
) -> None:
    answer = post(live_server.base_url, request_body())
    steps = answer["results"][0]["steps"]
    assert open_explorer(page, live_server.base_url) == "ready"
    page.click("#tab-steps")
    boxes = page.locator("#pipeline .strip-box")
    expect(boxes).to_have_count(11)
    shapes = {
        "inputs": "10 × 64",
        "q": "4 × 10 × 16",
        "scores": "4 × 10 × 10",
        "concat": "10 × 64",
        "output": "10 × 64",
    }
    for name, shape in shapes.items():
        expect(page.locator(f"#pipeline .strip-box[data-step={name}] .strip-shape")).to_have_text(
            shape
        )
    # the meanings come from GET /steps
    expect(page.locator("#pipeline .strip-box[data-step=attention]")).to_have_attribute(
        "aria-label", re.compile("softmax over keys")
    )
    page.select_option("#trace-query", str(WHO))
    page.select_option("#step-head", "1")
    for name in ("scores", "scaled_scores", "masked_scores", "attention"):
        cells = page.locator(f"#trace tr[data-step={name}] td")
        values = [
            float(v or "nan") for v in cells.evaluate_all("cs => cs.map(c => c.dataset.value)")
        ]
        assert values == steps[name][1][WHO]
    assert_accessible(page, "the pipeline strip with one query followed")
    # keyboard: a box opens its step
    page.locator("#pipeline .strip-box[data-step=attention]").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#steps article[data-step=attention]")).to_be_in_viewport()


def test_compare_shows_two_heads_and_their_difference_with_the_keyboard(
    page: Page, live_server: RunningServer
) -> None:
    attention = post(live_server.base_url, request_body())["results"][0]["attention"]
    assert open_explorer(page, live_server.base_url) == "ready"
    page.locator("#tab-steps").click()
    page.keyboard.press("ArrowRight")  # the tabs' arrow keys reach Compare
    expect(page.locator("#tab-compare")).to_have_attribute("aria-selected", "true")
    page.locator("#compare-a").focus()
    page.select_option("#compare-a", "0:1")
    page.select_option("#compare-b", "0:3")
    cards = page.locator("#compare-maps figure")
    expect(cards).to_have_count(3)
    expect(cards.nth(0).locator("h3")).to_contain_text("A: Head 1")
    expect(cards.nth(1).locator("h3")).to_contain_text("B: Head 3")
    raw = page.locator("#compare-maps figure[data-kind=difference] td[role=gridcell]").evaluate_all(
        "cs => cs.map(c => Number(c.dataset.value))"
    )
    head_a, head_b = attention[1], attention[3]
    expected = [
        a - b for ra, rb in zip(head_a, head_b, strict=True) for a, b in zip(ra, rb, strict=True)
    ]
    assert raw == pytest.approx(expected, abs=1e-9)
    assert_accessible(page, "the Compare tab")
