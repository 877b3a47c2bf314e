"""Readers for the container files: the Dockerfile, docker-compose.yml and the nginx template.

Small parsers for what the deploy tests check, not general ones: Dockerfile instructions with
their continuation lines joined, compose's `${NAME:-default}` interpolation, and the template's
envsubst placeholders rendered the way the nginx image's entrypoint renders them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.support.server import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
CUDA_COMPOSE_FILE = REPO_ROOT / "deploy" / "compose.cuda.yml"
NGINX_TEMPLATE = REPO_ROOT / "deploy" / "nginx" / "templates" / "attention.conf.template"
NGINX_MAIN_CONTEXT = REPO_ROOT / "deploy" / "nginx" / "nginx.conf"

TEMPLATE_VARIABLES = ("NGINX_UPSTREAM_SERVERS", "NGINX_LISTEN", "NGINX_RESOLVER")
"""The template's only placeholders; compose's proxy sets them, the proxy test renders them."""

_INTERPOLATION = re.compile(r"^\$\{(?P<name>[A-Z0-9_]+):-(?P<default>[^}]*)\}$")
_SIZE = re.compile(r"^(?P<number>\d+)(?P<unit>[kKmMgG]?)$")
_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<unit>ms|h|m|s)")


def dockerfile_instructions(text: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text() if text is None else text
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def dockerfile_final_stage() -> list[tuple[str, str]]:
    """The instructions from the last FROM on: what the image runs with."""
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def exec_form(arguments: str) -> list[str]:
    """A JSON-array (exec form) argument list; anything else is an error."""
    parsed = json.loads(arguments)
    if not (isinstance(parsed, list) and all(isinstance(item, str) for item in parsed)):
        raise ValueError(f"not an exec-form array: {arguments}")
    return parsed


def dockerfile_healthcheck() -> tuple[dict[str, str], list[str]]:
    """HEALTHCHECK's options (--interval=...) and its exec-form command."""
    [arguments] = [args for keyword, args in dockerfile_final_stage() if keyword == "HEALTHCHECK"]
    options: dict[str, str] = {}
    rest = arguments
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        name, _, value = option[2:].partition("=")
        options[name] = value
        rest = rest.strip()
    keyword, _, command = rest.partition(" ")
    if keyword != "CMD":
        raise ValueError(f"HEALTHCHECK without CMD: {arguments}")
    return options, exec_form(command)


def dockerfile_args() -> dict[str, str]:
    """ARG defaults, over all stages."""
    args: dict[str, str] = {}
    for keyword, arguments in dockerfile_instructions():
        if keyword == "ARG" and "=" in arguments:
            name, _, value = arguments.partition("=")
            args[name] = value
    return args


def dockerfile_env() -> dict[str, str]:
    """ENV of the final stage (KEY=value form)."""
    env: dict[str, str] = {}
    for keyword, arguments in dockerfile_final_stage():
        if keyword == "ENV":
            for pair in arguments.split():
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def interpolation(value: str) -> tuple[str, str]:
    """`${NAME:-default}` as (NAME, default); anything else is an error."""
    match = _INTERPOLATION.match(value)
    if match is None:
        raise ValueError(f"not a ${{NAME:-default}} interpolation: {value!r}")
    return match["name"], match["default"]


def with_defaults(value: str) -> str:
    """A compose value with every `${NAME:-default}` in it replaced by its default."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", lambda match: match[1], value)


def nginx_size(value: str) -> int:
    """An nginx size (`16m`, `512k`, `1024`) in bytes."""
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"not an nginx size: {value!r}")
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match["unit"].lower()]
    return int(match["number"]) * scale


def seconds(value: str) -> float:
    """A compose or nginx duration (`20s`, `1m30s`, `60s`, `500ms`) in seconds."""
    parts = _DURATION.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        raise ValueError(f"not a duration: {value!r}")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(number) * scale[unit] for number, unit in parts)


def nginx_directives(name: str, text: str | None = None) -> list[str]:
    """The arguments of every `name ...;` directive in the template, or in `text` (comments
    dropped)."""
    text = NGINX_TEMPLATE.read_text() if text is None else text
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    return [m.strip() for m in re.findall(rf"(?m)^\s*{re.escape(name)}\s+([^;]*);", code)]


def template_placeholders(text: str | None = None) -> set[str]:
    """Every `${NAME}` in the template: what envsubst will replace."""
    text = NGINX_TEMPLATE.read_text() if text is None else text
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))


def render_nginx_template(values: dict[str, str]) -> str:
    """The template with its placeholders replaced, as `envsubst '${A} ${B}'` does it (the
    nginx image's entrypoint with NGINX_ENVSUBST_FILTER): only the named `${NAME}` forms."""
    if set(values) != set(TEMPLATE_VARIABLES):
        raise ValueError(f"the template takes exactly {TEMPLATE_VARIABLES}, got {sorted(values)}")
    text = NGINX_TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"${{{name}}}", value)
    return text
