"""`python -m app`: the one server command of `make serve`, the container and the tests."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping
from copy import deepcopy
from types import FrameType
from typing import Any

import uvicorn
from pydantic import ValidationError
from uvicorn.config import LOGGING_CONFIG

from app.http import edge
from app.serving.settings import Settings, get_settings

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
BAD_SETTINGS_EXIT = 2  # the shell's "wrong usage"; a supervisor should not restart on it
ENV_PREFIX = str(Settings.model_config.get("env_prefix", ""))


def main() -> None:
    settings = checked_settings()
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
            http=edge.PROTOCOL,  # uvicorn's httptools protocol, with the connection guard
            proxy_headers=True,
            log_config=logging_config(),
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def checked_settings() -> Settings:
    """The settings, checked here, in the parent, before any worker starts: a bad one would
    otherwise crash every worker that uvicorn's parent restarts, forever. One line per problem
    on stderr, then exit 2."""
    try:
        settings = get_settings()
    except ValidationError as error:
        problems = [describe_setting_error(found) for found in error.errors()]
    else:
        problems = device_problems(settings) + descriptor_problems(settings)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(BAD_SETTINGS_EXIT)
    return settings


def describe_setting_error(error: Mapping[str, Any]) -> str:
    """`ATTENTION_WORKERS=0: must be at least 1`: the variable, the value given, the rule."""
    name = ENV_PREFIX + ".".join(str(part) for part in error["loc"]).upper()
    return f"{name}={error.get('input', '')}: {_rule(error)}"


def _rule(error: Mapping[str, Any]) -> str:
    context = {  # 0.0 reads as 0
        key: f"{value:g}" if isinstance(value, float) else value
        for key, value in (error.get("ctx") or {}).items()
    }
    rules = {
        "greater_than_equal": "must be at least {ge}",
        "greater_than": "must be more than {gt}",
        "less_than_equal": "must be at most {le}",
        "less_than": "must be less than {lt}",
        "int_parsing": "must be a whole number",
        "float_parsing": "must be a number",
        "literal_error": "must be one of {expected}",
    }
    if error["type"] in rules:
        return rules[error["type"]].format(**context)
    if "error" in context:  # a validator's own ValueError: its message is the rule
        return str(context["error"])
    message = str(error["msg"])
    return message[:1].lower() + message[1:]


def device_problems(settings: Settings) -> list[str]:
    """A device that this machine lacks (`cuda` without a GPU). Only then is torch imported:
    for 'auto' and 'cpu' the parent, which computes nothing, stays without it."""
    if settings.device in ("auto", "cpu"):
        return []
    from attention import ConfigError, resolve_device

    try:
        resolve_device(settings.device)
    except ConfigError as error:
        return [f"{ENV_PREFIX}DEVICE={settings.device}: {error}"]
    return []


def descriptor_problems(settings: Settings) -> list[str]:
    """Past the open-file limit a worker's accept() fails, and connections wait in the kernel's
    backlog where neither the cap nor a timeout reaches them: the cap must fit under it. A soft
    limit too low is first raised (up to the hard one, as any process may), for the workers to
    inherit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = edge.descriptors_needed(settings.max_connections)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return []
    soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft >= needed:
        return []
    most = soft - (needed - settings.max_connections)
    return [
        f"{ENV_PREFIX}MAX_CONNECTIONS={settings.max_connections}: must be at most {most} here: "
        f"the open-file limit is {soft} (ulimit -n), and a worker keeps "
        f"{needed - settings.max_connections} for its own files and closing connections"
    ]


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
