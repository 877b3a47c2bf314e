"""In-process tests of the service's modules; async ones run on anyio's plugin with asyncio.

The backend fixture is module-scoped so that a module can share one app, lifespan entered, across
its tests (an async fixture may not outlive the backend it runs on).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"
