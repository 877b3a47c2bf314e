"""Same input, same numbers: string tokens across two separate server processes
(docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.api import attend
from tests.integration.conftest import client_for
from tests.support.server import running_server

pytestmark = pytest.mark.integration

BODY: dict[str, Any] = {
    "sequences": [["The", "man", "who", "passes", "the", "sentence"], ["swing", "the", "sword"]],
    "config": {"d_model": 16, "num_heads": 4, "seed": 11},
    "output": {"steps": ["token_embeddings", "q", "k", "v"]},
}


def results_of_a_fresh_server(log_dir: Path, hash_seed: str) -> list[dict[str, Any]]:
    # a different PYTHONHASHSEED per process: an embedding derived from the salted hash() of a
    # string would differ between the two servers
    with (
        running_server(env={"PYTHONHASHSEED": hash_seed}, log_dir=log_dir) as server,
        client_for(server.base_url) as client,
    ):
        results: list[dict[str, Any]] = attend(client, BODY)["results"]
    return results


def test_string_tokens_give_identical_numbers_across_server_restarts(tmp_path: Path) -> None:
    first = results_of_a_fresh_server(tmp_path, "1")
    second = results_of_a_fresh_server(tmp_path, "2")

    assert first == second
