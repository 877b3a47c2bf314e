"""`python -m app`: the one server command of `make serve`, the container and the tests."""

from __future__ import annotations

import os

import uvicorn

from app.settings import get_settings


def main() -> None:
    settings = get_settings()
    if settings.torch_threads:
        # OpenMP reads this once at start-up, in every worker process that inherits it
        os.environ.setdefault("OMP_NUM_THREADS", str(settings.torch_threads))
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.graceful_shutdown_s),
        server_header=False,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
