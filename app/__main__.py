"""`python -m app`: the one server command of `make serve`, the container and the tests."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from copy import deepcopy
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from app.settings import Settings, get_settings

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def main() -> None:
    settings = get_settings()
    if settings.torch_threads:
        # OpenMP reads this once at start-up, in every worker process that inherits it
        os.environ.setdefault("OMP_NUM_THREADS", str(settings.torch_threads))
    metrics_dir = shared_metrics_dir(settings.workers)
    signal.signal(signal.SIGTERM, exit_cleanly)
    try:
        uvicorn.run(
            "app.main:app",
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            timeout_graceful_shutdown=drain_timeout_s(settings),
            server_header=False,
            proxy_headers=True,
            log_config=logging_config(),
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def logging_config() -> dict[str, Any]:
    """uvicorn's own logging, plus the service's "app" logger (draining, model loading) on the
    same handler: without a handler its info lines would never reach the server's log."""
    config: dict[str, Any] = deepcopy(LOGGING_CONFIG)
    config["loggers"]["app"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def shared_metrics_dir(workers: int) -> str | None:
    """Several workers: prometheus_client's multiprocess mode, in a fresh folder per start.

    Set before uvicorn spawns the workers, so that each inherits it and /metrics, answered by
    any one of them, adds up the counts of all.
    """
    if workers == 1:
        return None
    path = tempfile.mkdtemp(prefix="attention-metrics-")
    os.environ[MULTIPROC_DIR] = path
    return path


def drain_timeout_s(settings: Settings) -> int:
    """What uvicorn gives in-flight requests once the listener closes: the graceful budget less
    the drain delay spent before it, in whole seconds (uvicorn's type), at least one."""
    return max(1, int(settings.graceful_shutdown_s - settings.drain_delay_s))


def exit_cleanly(signum: int, frame: FrameType | None) -> None:
    """SIGTERM outside uvicorn's own handler: exit 0 instead of dying of the signal.

    uvicorn re-raises the SIGTERM it drained for once it has finished, under the handler that it
    found at start; under the default one the process would end killed by the signal (-15)
    after a clean shutdown. Before uvicorn installs its handler (start-up), this stops at once.
    """
    sys.exit(0)


if __name__ == "__main__":
    main()
