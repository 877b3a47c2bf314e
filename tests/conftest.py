"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.server import RunningServer, running_server

IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server for the session: `python -m app` on a free port, ready."""
    with running_server(log_dir=tmp_path_factory.mktemp("server")) as server:
        yield server
