"""What the browser tests know about the explorer page: its selectors and how to drive it."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from attention import STEPS

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DEFAULT_TEXT = "The man who passes the sentence should swing the sword"
DEFAULT_CONFIG: dict[str, Any] = {
    "d_model": 64,
    "num_heads": 4,
    "num_kv_heads": None,
    "seed": 0,
    "window": None,
    "positional_encoding": "sinusoidal",
    "causal": False,
}
HEAD_CARDS = "#heatmaps figure[data-kind=head]"
STEP_ORDER = list(STEPS)  # the page walks the pipeline in the library's order


def request_body(text: str = DEFAULT_TEXT, **config: Any) -> dict[str, Any]:
    """The body the page sends for this sentence and configuration."""
    return {
        "text": text,
        "config": {**DEFAULT_CONFIG, **config},
        "output": {"attention": "per_head", "steps": "all", "precision": 4, "metrics": True},
    }


def generation(page: Page) -> int:
    """How many requests the page has settled (succeeded or failed) since it loaded."""
    return int(page.get_attribute("#main", "data-generation") or 0)


def wait_settled(page: Page, after: int) -> str:
    """Wait for the request after `after` to settle; return the page state (ready or error)."""
    page.wait_for_function(
        "n => Number(document.getElementById('main').dataset.generation) > n", arg=after
    )
    return page.get_attribute("#main", "data-state") or ""


def open_explorer(page: Page, base_url: str) -> str:
    """Load the page and wait for its first request (the default sentence) to settle."""
    page.goto(f"{base_url}/")
    return wait_settled(page, 0)


def open_settings(page: Page) -> None:
    """Unfold the head configuration, the model and the API key (folded after a first result)."""
    page.evaluate("document.getElementById('form-more').open = true")


def fill_form(page: Page, text: str | None = None, **fields: Any) -> None:
    if text is not None:
        page.fill("#text", text)
    if fields:
        open_settings(page)
    for name, value in fields.items():
        if name == "causal":
            page.set_checked("#causal", bool(value))
        elif name == "positional_encoding":
            page.select_option("#positional_encoding", value)
        else:
            page.fill(f"#{name}", "" if value is None else str(value))


def submit(page: Page, text: str | None = None, **fields: Any) -> str:
    """Fill the form, click the submit button and wait; returns ready or error."""
    fill_form(page, text, **fields)
    before = generation(page)
    page.click("#submit")
    return wait_settled(page, before)


def row_labels(page: Page, table: str) -> list[str]:
    return page.locator(f"{table} tbody th.row-label").all_inner_texts()


def column_labels(page: Page, table: str) -> list[str]:
    return page.locator(f"{table} thead th.col-label").all_inner_texts()


def cell_values(page: Page, table: str) -> list[list[float | None]]:
    """The data-value of every cell of a heatmap, as numbers (None for null)."""
    raw: list[list[str]] = page.eval_on_selector(
        table,
        """t => [...t.tBodies[0].rows].map(r =>
                 [...r.querySelectorAll('td[role=gridcell]')].map(c => c.dataset.value))""",
    )
    return [[None if v == "null" else float(v) for v in row] for row in raw]


def no_horizontal_scroll(page: Page, width: int) -> bool:
    return bool(page.evaluate(f"document.documentElement.scrollWidth <= {width}"))


def close_to(a: float | None, b: float | None, tolerance: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=0, abs_tol=tolerance)


# -- the pretrained model ------------------------------------------------------------------------

PRETRAINED_STEPS = [step for step in STEP_ORDER if step not in ("token_embeddings", "positional")]
"""The steps a pretrained model's layer traces, in the order the steps panel draws them."""
THUMBS = "#model-grid button.thumb"


def pretrained_body(name: str, text: str = DEFAULT_TEXT) -> dict[str, Any]:
    """The body the page sends for a pretrained model: every layer, no steps (those come per
    layer, see `layer_steps_body`)."""
    return {
        "model": name,
        "text": text,
        "layers": "all",
        "output": {"attention": "per_head", "precision": 4, "metrics": True, "analysis": True},
    }


def layer_steps_body(name: str, layer: int, text: str = DEFAULT_TEXT) -> dict[str, Any]:
    """The body the steps panel sends for one layer of a pretrained model."""
    return {
        "model": name,
        "text": text,
        "layers": [layer],
        "output": {"attention": "none", "steps": "all", "precision": 4},
    }


def choose_model(page: Page, name: str) -> str:
    """Wait for GET /models to fill the selector, pick `name` and wait for the computation that a
    new model starts; returns its state (ready or error)."""
    page.wait_for_function("() => document.getElementById('model').dataset.loaded === 'true'")
    open_settings(page)
    if page.input_value("#model") == name:
        return page.get_attribute("#main", "data-state") or ""
    before = generation(page)
    page.select_option("#model", name)
    return wait_settled(page, before)


def wait_steps(page: Page, layer: int) -> None:
    """Wait until the steps panel shows `layer` (0-based) of a pretrained model."""
    page.wait_for_function(
        """l => { const s = document.getElementById('steps');
                  return s.dataset.state === 'ready' && s.dataset.layer === String(l); }""",
        arg=layer,
    )


def thumbnail(layer: int, head: int) -> str:
    return f"{THUMBS}[data-layer='{layer}'][data-head='{head}']"


# -- accessibility -------------------------------------------------------------------------------


def axe_violations(page: Page) -> list[str]:
    """axe-core's violations on the page as it stands: 'rule: target…' lines, empty when none."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    found: list[str] = []
    for violation in results.response.get("violations", []):
        targets = [", ".join(node["target"]) for node in violation["nodes"][:3]]
        found.append(f"{violation['id']}: {' | '.join(targets)}")
    return found


def assert_accessible(page: Page, state: str) -> None:
    """Zero axe-core violations in this page state (named in the failure message)."""
    violations = axe_violations(page)
    assert not violations, f"axe-core violations with {state}: {violations}"
