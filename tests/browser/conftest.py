"""Fixtures of the browser suite: one Chromium for the session, a fresh page per test.

Playwright's Python package drives Debian's Chromium (/usr/bin/chromium). Where that binary is
missing the suite is skipped with the reason printed, except in CI (CI=true), where it fails.
Every test leaves a screenshot in test-results/<test name>/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.browser.explorer_page import CHROMIUM, CHROMIUM_ARGS
from tests.support.server import REPO_ROOT, RunningServer, running_server

RESULTS_DIR = REPO_ROOT / "test-results"
DESKTOP = {"width": 1280, "height": 900}


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"Chromium not found at {CHROMIUM}: install Debian's chromium (make system-deps)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true, so the browser suite may not be skipped")
    print(f"\nskipping the browser tests: {reason}")
    pytest.skip(reason)


# package scope, not session: Playwright's sync API keeps an event loop running in the main
# thread while it is open, and asyncio.run() in a later test folder would then fail
@pytest.fixture(scope="package")
def playwright_instance() -> Iterator[Playwright]:
    require_chromium()
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="package")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


def output_dir(request: pytest.FixtureRequest) -> Path:
    """test-results/<test name>/, created on first use."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder = RESULTS_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    return output_dir(request)


class PageErrors(list[str]):
    """Uncaught exceptions in the page; a test ends with none."""


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def page(context: BrowserContext, artifacts: Path, page_errors: PageErrors) -> Iterator[Page]:
    """A page of a fresh context (1280 × 900); its last view is saved as `artifacts`/final.png."""
    page = context.new_page()
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    yield page
    page.screenshot(path=str(artifacts / "final.png"))
    assert not page_errors, f"uncaught errors in the page: {page_errors}"


WIDE_DECODER = {"layers": 32, "heads": 32}
"""The size of the widest decoder the page is tested on: the layer × head grid of a large model."""


def write_wide_decoder(folder: Path) -> Path:
    """A tiny Llama of 32 layers × 32 heads (width 64, head_dim 2): 0.7 M random parameters."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from tests.support.tiny_decoder import VOCAB_SIZE, write_tokenizer

    config = LlamaConfig(
        vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=24,
        num_hidden_layers=WIDE_DECODER["layers"], num_attention_heads=WIDE_DECODER["heads"],
        num_key_value_heads=8, max_position_embeddings=64, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(str(folder))
    write_tokenizer(folder / "tokenizer.json", bos=True)
    return folder


@pytest.fixture(scope="package")
def decoder_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real server with ATTENTION_MODELS_DIR holding tiny random decoders: tiny-llama (4 heads
    on 2 K/V heads), tiny-mistral (a sliding window of 3), wide-llama (32 × 32) and broken (an
    unsupported model_type, listed as unavailable)."""
    from tests.support.tiny_decoder import write_tiny_decoder

    models = tmp_path_factory.mktemp("models")
    write_tiny_decoder(models / "tiny-llama", "llama-gqa-wide-heads-biases")
    write_tiny_decoder(models / "tiny-mistral", "mistral-window")
    write_wide_decoder(models / "wide-llama")
    (models / "broken").mkdir()
    (models / "broken" / "config.json").write_text('{"model_type": "falcon"}')
    env = {"ATTENTION_MODELS_DIR": str(models)}
    with running_server(env, log_dir=tmp_path_factory.mktemp("decoder-server")) as server:
        yield server


@pytest.fixture(scope="module")
def model(live_server: RunningServer) -> dict[str, Any]:
    """The first pretrained entry of GET /models; the module is skipped when there is none."""
    listing = httpx.get(f"{live_server.base_url}/models", timeout=30).json()
    for entry in listing["models"]:
        if entry["kind"] == "pretrained":
            found: dict[str, Any] = entry
            return found
    pytest.skip(f"GET /models lists no pretrained model: {listing.get('unavailable')}")
