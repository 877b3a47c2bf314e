"""The settings checks of `python -m app`'s parent process (app/__main__.py) and their rules."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import torch
from pydantic import ValidationError

from app import __main__ as entry
from app.__main__ import BAD_SETTINGS_EXIT, checked_settings, describe_setting_error
from app.http.edge import descriptors_needed
from app.serving.settings import Settings, get_settings
from tests.support.server import REPO_ROOT


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No ATTENTION_* from the outside, and get_settings() read again (before and after)."""
    for name in [name for name in os.environ if name.startswith("ATTENTION_")]:
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def problems(**env: str) -> list[str]:
    try:
        Settings(**env)  # type: ignore[arg-type]
    except ValidationError as error:
        return [describe_setting_error(found) for found in error.errors()]
    return []


@pytest.mark.parametrize(
    ("field", "value", "line"),
    [
        ("workers", "0", "ATTENTION_WORKERS=0: must be at least 1"),
        ("workers", "65", "ATTENTION_WORKERS=65: must be at most 64"),
        ("max_tokens", "-1", "ATTENTION_MAX_TOKENS=-1: must be at least 1"),
        ("graceful_shutdown_s", "0", "ATTENTION_GRACEFUL_SHUTDOWN_S=0: must be more than 0"),
        ("port", "http", "ATTENTION_PORT=http: must be a whole number"),
        ("request_timeout_s", "soon", "ATTENTION_REQUEST_TIMEOUT_S=soon: must be a number"),
        (
            "log_level",
            "loud",
            "ATTENTION_LOG_LEVEL=loud: must be one of "
            "'critical', 'error', 'warning', 'info' or 'debug'",
        ),
        ("device", "gpu", "ATTENTION_DEVICE=gpu: must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        (
            "api_keys",
            ",",
            "ATTENTION_API_KEYS=,: must not hold an empty entry (two commas, or one at either end)",
        ),
        ("header_timeout_s", "0", "ATTENTION_HEADER_TIMEOUT_S=0: must be more than 0"),
        ("max_connections", "0", "ATTENTION_MAX_CONNECTIONS=0: must be at least 1"),
    ],
)
def test_one_line_names_the_variable_the_value_and_the_rule(
    fresh_settings: pytest.MonkeyPatch, field: str, value: str, line: str
) -> None:
    fresh_settings.setenv(f"ATTENTION_{field.upper()}", value)

    with pytest.raises(ValidationError) as raised:
        Settings()

    assert [describe_setting_error(found) for found in raised.value.errors()] == [line]


@pytest.mark.parametrize("keys", [",", "a,", ",a", "a,,b", " , "])
def test_an_empty_api_key_is_refused_instead_of_turning_authentication_off(
    fresh_settings: pytest.MonkeyPatch, keys: str
) -> None:
    fresh_settings.setenv("ATTENTION_API_KEYS", keys)

    with pytest.raises(ValidationError, match="empty entry"):
        Settings()


@pytest.mark.parametrize(("keys", "parsed"), [("", ()), ("a", ("a",)), (" a , b ", ("a", "b"))])
def test_empty_means_no_keys_and_keys_are_trimmed(
    fresh_settings: pytest.MonkeyPatch, keys: str, parsed: tuple[str, ...]
) -> None:
    fresh_settings.setenv("ATTENTION_API_KEYS", keys)

    assert Settings().api_keys == parsed


def test_an_empty_origin_is_refused_too() -> None:
    assert problems(cors_origins="https://a.example,") == [
        "ATTENTION_CORS_ORIGINS=https://a.example,: must not hold an empty entry "
        "(two commas, or one at either end)"
    ]


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_device_names_of_the_supported_kinds_pass_the_settings(device: str) -> None:
    assert Settings(device=device).device == device


def test_every_bad_setting_is_reported_then_the_process_exits_2(
    fresh_settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh_settings.setenv("ATTENTION_WORKERS", "0")
    fresh_settings.setenv("ATTENTION_MAX_TOKENS", "-1")
    fresh_settings.setenv("ATTENTION_API_KEYS", ",")

    with pytest.raises(SystemExit) as exited:
        checked_settings()

    assert exited.value.code == BAD_SETTINGS_EXIT == 2
    lines = capsys.readouterr().err.splitlines()
    assert sorted(lines) == [
        "ATTENTION_API_KEYS=,: must not hold an empty entry (two commas, or one at either end)",
        "ATTENTION_MAX_TOKENS=-1: must be at least 1",
        "ATTENTION_WORKERS=0: must be at least 1",
    ]


def test_a_cuda_device_this_machine_lacks_is_reported_then_the_process_exits_2(
    fresh_settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last, on any machine
    fresh_settings.setenv("ATTENTION_DEVICE", missing)

    with pytest.raises(SystemExit) as exited:
        checked_settings()

    assert exited.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"ATTENTION_DEVICE={missing}: ")
    assert "CUDA" in line


def test_good_settings_pass(fresh_settings: pytest.MonkeyPatch) -> None:
    fresh_settings.setenv("ATTENTION_DEVICE", "cpu")

    assert checked_settings().device == "cpu"


class FakeLimits:
    """resource's open-file limit, as a test sets it."""

    def __init__(self, soft: int, hard: int) -> None:
        self.soft, self.hard = soft, hard

    def getrlimit(self, which: int) -> tuple[int, int]:
        return self.soft, self.hard

    def setrlimit(self, which: int, limits: tuple[int, int]) -> None:
        assert limits[0] <= self.hard
        self.soft, self.hard = limits


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> FakeLimits:
    fake = FakeLimits(1024, 1024)
    monkeypatch.setattr(entry.resource, "getrlimit", fake.getrlimit)
    monkeypatch.setattr(entry.resource, "setrlimit", fake.setrlimit)
    return fake


def test_a_connection_cap_past_the_open_file_limit_is_refused(limits: FakeLimits) -> None:
    reserve = descriptors_needed(0)

    problems = entry.descriptor_problems(Settings(max_connections=1000))

    assert problems == [
        f"ATTENTION_MAX_CONNECTIONS=1000: must be at most {1024 - reserve} here: the open-file "
        f"limit is 1024 (ulimit -n), and a worker keeps {reserve} for its own files and "
        "closing connections"
    ]


def test_the_soft_open_file_limit_is_raised_to_what_the_cap_needs(limits: FakeLimits) -> None:
    limits.hard = 65536

    assert entry.descriptor_problems(Settings(max_connections=1000)) == []
    assert limits.soft == descriptors_needed(1000)


def test_a_cap_within_the_limit_leaves_it_alone(limits: FakeLimits) -> None:
    assert entry.descriptor_problems(Settings(max_connections=100)) == []
    assert limits.soft == 1024


PARENT_PROBE = """
import sys
import app.__main__
print(sorted({"torch", "attention"} & {name.split(".")[0] for name in sys.modules}))
"""


def test_the_parent_process_computes_nothing_and_imports_no_torch() -> None:
    # uvicorn's parent only supervises the workers: torch would hold ~240 MB in it for nothing
    completed = subprocess.run(
        [sys.executable, "-c", PARENT_PROBE],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip

    assert completed.stdout.strip() == "[]"


def test_the_model_size_default_is_the_library_default() -> None:
    from app.serving import settings
    from attention.folders.files import DEFAULT_MAX_MODEL_BYTES

    assert settings.DEFAULT_MAX_MODEL_BYTES == DEFAULT_MAX_MODEL_BYTES
    assert Settings().max_model_bytes == DEFAULT_MAX_MODEL_BYTES
