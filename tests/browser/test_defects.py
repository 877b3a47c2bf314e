"""The defects of issue 15, each pinned by a test: numbers in the steps' cells, 0-based numbering,
the model switch, touch, the tooltip, outliers, the synced head selectors, the exports, contrast."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.explorer_page import (
    HEAD_CARDS,
    assert_accessible,
    generation,
    open_explorer,
    open_settings,
    wait_settled,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.browser

SHORT_NUMBER = re.compile(r"^-?(\d+|\d?\.\d{1,2}|\d\.\d)$")


def test_numbers_in_cells_show_in_the_steps_short_and_on_one_line(
    page: Page, live_server: RunningServer
) -> None:
    assert open_explorer(page, live_server.base_url) == "ready"
    page.click("#tab-steps")
    page.check("#show-values")
    values = page.locator("#steps article[data-step=scores] .cell-value")
    expect(values.first).to_be_visible()
    texts = page.eval_on_selector_all(
        "#steps .cell-value",
        "spans => spans.map(s => [s.textContent, s.scrollWidth, s.clientWidth])",
    )
    assert texts, "no numbers drawn in the steps"
    for text, scroll, client in texts:
        assert SHORT_NUMBER.match(text), f"{text!r} is not a short plain number"
        assert scroll <= client + 1, f"{text!r} overflows its cell"
    assert_accessible(page, "numbers in the steps' cells")
    page.click("#tab-heads")
    assert_accessible(page, "numbers in the heads' cells")


def test_layers_heads_and_positions_are_numbered_from_0_as_in_the_api(
    page: Page, live_server: RunningServer
) -> None:
    assert open_explorer(page, live_server.base_url) == "ready"
    expect(page.locator("#numbering-note")).to_contain_text("numbered from 0")
    titles = page.locator(f"{HEAD_CARDS} figcaption h3").all_inner_texts()
    assert [t.strip() for t in titles] == ["Head 0", "Head 1", "Head 2", "Head 3"]
    cell = page.locator(f"{HEAD_CARDS}[data-head='2'] td[data-query='2'][data-key='1']")
    named = re.compile(r"^Head 2: query “who” \(2\) → key “man” \(1\)")
    expect(cell).to_have_attribute("aria-label", named)
    page.click("#tab-connections")
    options = page.locator("#conn-head option").all_inner_texts()
    assert options[:4] == ["Head 0", "Head 1", "Head 2", "Head 3"]


def fake_models(route: Route) -> None:
    """GET /models as the service answers it, plus a pretrained model it does not serve."""
    answer = route.fetch().json()
    answer["models"].append({"name": "not-served", "kind": "pretrained", "layers": 2, "heads": 2})
    route.fulfill(status=200, content_type="application/json", body=json.dumps(answer))


def test_switching_the_model_computes_with_it_and_leaves_no_stale_status(
    page: Page, live_server: RunningServer
) -> None:
    page.route("**/models", fake_models)
    assert open_explorer(page, live_server.base_url) == "ready"
    expect(page.locator("#status")).to_contain_text("Done: 4 heads")
    page.wait_for_function("() => document.getElementById('model').dataset.loaded === 'true'")
    open_settings(page)
    before = generation(page)
    page.select_option("#model", "not-served")
    assert wait_settled(page, before) == "error"
    expect(page.locator("#status")).not_to_contain_text("Done")
    expect(page.locator("#stale-note")).to_be_visible()
    before = generation(page)
    page.select_option("#model", "random")
    assert wait_settled(page, before) == "ready"
    expect(page.locator("#stale-note")).to_be_hidden()


@pytest.fixture
def touch_page(browser: Browser, artifacts: Path) -> Iterator[Page]:
    """A 390 px phone with a touch screen."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        has_touch=True,
        is_mobile=True,
        device_scale_factor=2,
    )
    page = context.new_page()
    yield page
    page.screenshot(path=str(artifacts / "final.png"))
    context.close()


def boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_tapping_a_cell_shows_that_cell_and_the_tooltip_covers_no_label(
    touch_page: Page, live_server: RunningServer
) -> None:
    page = touch_page
    assert open_explorer(page, live_server.base_url) == "ready"
    card = f"{HEAD_CARDS}[data-head='1']"
    for query, key in [(2, 1), (5, 7), (9, 0), (0, 9)]:
        cell = page.locator(f"{card} td[data-query='{query}'][data-key='{key}']")
        cell.scroll_into_view_if_needed()
        cell.tap()
        value = cell.get_attribute("data-value")
        tip = page.locator("#tooltip")
        expect(tip).to_be_visible()
        expect(tip).to_contain_text(f"({query}) → key")
        expect(tip).to_contain_text(f"({key}): {value}")
        expect(page.locator(f"{card} .readout")).to_have_text(tip.inner_text())
        tip_box = tip.bounding_box()
        for label in page.locator(f"{card} th").all():
            label_box = label.bounding_box()
            if tip_box and label_box:
                assert not boxes_overlap(tip_box, label_box), "the tooltip covers a label"


def test_outliers_are_clipped_and_the_score_steps_share_a_scale(
    page: Page, live_server: RunningServer
) -> None:
    assert open_explorer(page, live_server.base_url) == "ready"
    # one dimension a hundred times larger than the rest no longer sets the scale on its own
    bound = page.evaluate(
        """async () => {
            const { signedBound } = await import('/static/step-scales.js');
            const values = Array.from({ length: 200 }, (_, i) => (i % 7) / 7 - 0.5);
            values.push(50, -60);
            return signedBound([values]);
        }"""
    )
    assert bound["bound"] < 1
    assert bound["clipped"] == 2
    page.click("#tab-steps")
    figures = {
        step: page.locator(f"#steps article[data-step={step}] figure")
        for step in ("scores", "scaled_scores", "masked_scores")
    }
    shared = {step: f.get_attribute("data-scale-max") for step, f in figures.items()}
    assert len(set(shared.values())) == 1, shared
    expect(figures["scores"]).to_have_attribute("data-shared", "true")
    # off: each step on its own scale again; the scaled scores are the scores times 1/√16
    page.uncheck("#share-scores")
    own = {step: float(f.get_attribute("data-scale-max") or 0) for step, f in figures.items()}
    assert own["scaled_scores"] == pytest.approx(own["scores"] / 4, rel=0.05)
    assert_accessible(page, "the steps, each on its own scale")


def test_the_head_selectors_of_every_view_follow_each_other(
    page: Page, live_server: RunningServer
) -> None:
    assert open_explorer(page, live_server.base_url) == "ready"
    page.click("#tab-connections")
    page.select_option("#conn-head", "2")
    page.click("#tab-steps")
    expect(page.locator("#step-head")).to_have_value("2")
    first_q = page.locator("#steps article[data-step=q] td[role=gridcell]").first
    expect(first_q).to_have_attribute("data-head", "2")
    page.select_option("#step-head", "3")
    page.click("#tab-connections")
    expect(page.locator("#conn-head")).to_have_value("3")
    expect(page.locator("#conn-caption")).to_contain_text("Head 3")


def test_exports_carry_the_model_and_seed_and_keep_their_subtitle(
    page: Page, live_server: RunningServer, artifacts: Path
) -> None:
    assert open_explorer(page, live_server.base_url) == "ready"
    with page.expect_download() as download:
        page.click(f"{HEAD_CARDS}[data-head='0'] button[data-download=svg]")
    name = download.value.suggested_filename
    assert name == "attention-random-seed0-head-0.svg"
    path = artifacts / name
    download.value.save_as(path)
    svg = path.read_text()
    assert "model random" in svg
    assert "seed 0" in svg
    assert "<metadata>" in svg
    width = float(re.search(r'width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    subtitle_line = re.search(r'y="42" font-size="12" fill="#5b6275">([^<]*)<', svg)
    assert subtitle_line
    subtitle = subtitle_line.group(1)
    assert width >= 16 + len(subtitle) * 6.6 - 1, "the subtitle would be clipped"
    # the steps export too
    page.click("#tab-steps")
    with page.expect_download() as step_download:
        page.click("#steps article[data-step=scores] button[data-download=svg]")
    assert step_download.value.suggested_filename.startswith("attention-random-seed0-scores")
    # and the connections view
    page.click("#tab-connections")
    with page.expect_download() as lines_download:
        page.click("#conn-exports button[data-download=svg]")
    lines_name = lines_download.value.suggested_filename
    assert lines_name == "attention-random-seed0-connections-head-0.svg"
    lines_path = artifacts / lines_name
    lines_download.value.save_as(lines_path)
    lines_svg = lines_path.read_text()
    assert lines_svg.count("<line") == 100  # 10 × 10 weights, all positive
    assert "seed 0" in lines_svg


def test_the_axis_notes_and_the_cells_pass_the_contrast_check(
    page: Page, live_server: RunningServer
) -> None:
    assert open_explorer(page, live_server.base_url) == "ready"
    page.check("#show-values")
    assert_accessible(page, "numbers in cells, the Heads tab")
    page.click("#tab-connections")
    assert_accessible(page, "the Connections tab")
