"""The Dockerfile, docker-compose.yml and the nginx template agree with the code they ship.

No Docker engine is needed: the files are read and compared with tests/support/server.py (the
server command), app/serving/settings.py (every default) and the Makefile (the torch version). The
moving parts (the nginx configuration, the HEALTHCHECK command) run for real in test_proxy.py.
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
from typing import Any

import pytest
import uvicorn

from app.serving.settings import Settings
from tests.deploy.files import (
    CUDA_COMPOSE_FILE,
    DOCKERIGNORE,
    NGINX_MAIN_CONTEXT,
    NGINX_TEMPLATE,
    TEMPLATE_VARIABLES,
    compose,
    dockerfile_args,
    dockerfile_env,
    dockerfile_final_stage,
    dockerfile_healthcheck,
    dockerfile_instructions,
    exec_form,
    interpolation,
    nginx_directives,
    nginx_size,
    render_nginx_template,
    seconds,
    template_placeholders,
    with_defaults,
)
from tests.support.server import REPO_ROOT, SERVER_COMMAND

pytestmark = pytest.mark.deploy

CONTAINER_DEFAULTS = {
    "host": "0.0.0.0",
    "torch_threads": 1,
    "memory_budget_bytes": 640 * 2**20,
    "max_request_bytes": 640 * 2**20,
    "module_cache_bytes": 128 * 2**20,
}
"""Where compose's defaults differ from Settings' on purpose (commented in docker-compose.yml):
the proxy must reach the replicas, and torch must not count the host's cores."""


def settings_defaults() -> dict[str, Any]:
    return {name: field.get_default() for name, field in Settings.model_fields.items()}


def env_name(field: str) -> str:
    return f"ATTENTION_{field.upper()}"


@pytest.fixture
def no_attention_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings() below must see only what a test gives it."""
    import os

    for name in list(os.environ):
        if name.startswith("ATTENTION_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    services: dict[str, Any] = compose()["services"]
    return services


@pytest.fixture(scope="module")
def api_environment(services: dict[str, Any]) -> dict[str, Any]:
    environment: dict[str, Any] = services["api"]["environment"]
    return environment


# -- Dockerfile ---------------------------------------------------------------------------------


def test_the_image_runs_the_tests_server_command() -> None:
    commands = [args for keyword, args in dockerfile_final_stage() if keyword == "CMD"]
    assert commands, "the final stage has no CMD"
    assert exec_form(commands[-1]) == list(SERVER_COMMAND)


def test_the_image_has_no_entrypoint_that_would_wrap_the_command() -> None:
    assert all(keyword != "ENTRYPOINT" for keyword, _ in dockerfile_instructions())


def test_the_healthcheck_asks_readyz_with_python_not_curl() -> None:
    options, command = dockerfile_healthcheck()
    assert command[:2] == ["python", "-c"]
    assert "/readyz" in command[2]
    assert "ATTENTION_PORT" in command[2]
    assert "curl" not in " ".join(command)
    assert seconds(options["start-period"]) >= 30  # torch and the model load first


def test_the_image_listens_on_all_interfaces_at_port_8000() -> None:
    env = dockerfile_env()
    assert env["ATTENTION_HOST"] == "0.0.0.0"
    assert env["ATTENTION_PORT"] == "8000"
    assert ("EXPOSE", env["ATTENTION_PORT"]) in dockerfile_final_stage()


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [args for keyword, args in dockerfile_final_stage() if keyword == "USER"]
    assert users, "the final stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_the_final_stage_copies_only_the_venv_from_the_builder() -> None:
    copies = [args for keyword, args in dockerfile_final_stage() if keyword == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    runs = " ".join(args for keyword, args in dockerfile_final_stage() if keyword == "RUN")
    assert "pip" not in runs
    assert "apt-get" not in runs


def test_the_base_is_slim_python_3_11_bookworm() -> None:
    bases = [args.split()[0] for keyword, args in dockerfile_instructions() if keyword == "FROM"]
    assert bases == ["python:3.11-slim-bookworm"] * 2


def test_the_image_installs_the_makefiles_torch_from_the_variants_index() -> None:
    args = dockerfile_args()
    assert args["TORCH_VARIANT"] == "cpu"
    makefile = (REPO_ROOT / "Makefile").read_text()
    [spec] = re.findall(r"^TORCH_SPEC \?= (\S+)$", makefile, flags=re.MULTILINE)
    assert spec == f"torch=={args['TORCH_VERSION']}"
    runs = [args for keyword, args in dockerfile_instructions() if keyword == "RUN"]
    assert any(
        '--index-url "${TORCH_INDEX_URL}/${TORCH_VARIANT}"' in run and "torch==" in run
        for run in runs
    )


def test_the_build_context_leaves_out_the_venv_git_and_caches() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "the context is an allowlist: everything out, then what COPY needs"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {
        source.rstrip("/")
        for keyword, args in dockerfile_instructions()
        if keyword == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    }
    assert copied == allowed
    assert not allowed & {".venv", ".git", "tests", "test-results", ".pytest_cache"}


# -- docker-compose.yml -------------------------------------------------------------------------


def test_every_setting_is_in_compose_with_its_default_and_nothing_else(
    api_environment: dict[str, Any],
) -> None:
    expected = {env_name(field) for field in Settings.model_fields}
    present = {name for name in api_environment if name.startswith("ATTENTION_")}
    assert present == expected


def test_compose_defaults_are_settings_defaults(
    api_environment: dict[str, Any], no_attention_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each `${ATTENTION_X:-default}` names its own variable, and its default, read by
    Settings, gives Settings' own default (except the two documented container defaults)."""
    for field, default in settings_defaults().items():
        name = env_name(field)
        value = api_environment[name]
        if default is None:
            assert value is None, f"{name}: no default means passed only when set"
            continue
        referenced, compose_default = interpolation(value)
        assert referenced == name
        monkeypatch.setenv(name, compose_default)
    expected = {**settings_defaults(), **CONTAINER_DEFAULTS}
    assert Settings().model_dump() == expected


def test_the_container_defaults_match_the_image_and_the_cpu_limit(
    services: dict[str, Any],
) -> None:
    assert CONTAINER_DEFAULTS["host"] == dockerfile_env()["ATTENTION_HOST"]
    limits = services["api"]["deploy"]["resources"]["limits"]
    max_concurrency = settings_defaults()["max_concurrency"]
    assert CONTAINER_DEFAULTS["torch_threads"] * max_concurrency == float(limits["cpus"])


def test_the_grace_period_outlasts_the_services_graceful_shutdown(
    services: dict[str, Any],
) -> None:
    grace = seconds(services["api"]["stop_grace_period"])
    assert grace > settings_defaults()["graceful_shutdown_s"]


def test_the_api_service_is_hardened_and_limited(services: dict[str, Any]) -> None:
    api = services["api"]
    assert api["read_only"] is True
    assert any(mount.split(":")[0] == "/tmp" for mount in api["tmpfs"])
    assert api["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in api["security_opt"]
    assert api["init"] is True
    assert api["restart"] == "unless-stopped"
    assert set(api["deploy"]["resources"]["limits"]) >= {"cpus", "memory"}


def test_the_api_publishes_no_port_so_it_scales(services: dict[str, Any]) -> None:
    assert "ports" not in services["api"]
    assert "container_name" not in services["api"]


def test_the_compose_healthcheck_is_the_images(services: dict[str, Any]) -> None:
    test = services["api"]["healthcheck"]["test"]
    options, command = dockerfile_healthcheck()
    assert test == ["CMD", *command]
    for option in ("interval", "timeout", "start-period", "retries"):
        assert str(services["api"]["healthcheck"][option.replace("-", "_")]) == options[option]


def test_the_proxy_is_the_only_published_port_and_waits_for_a_healthy_api(
    services: dict[str, Any],
) -> None:
    proxy = services["proxy"]
    assert proxy["ports"] == ["${PROXY_PORT:-8000}:8000"]
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"
    assert proxy["environment"]["NGINX_LISTEN"] == "8000"
    assert all(volume.endswith(":ro") for volume in proxy["volumes"])


def test_the_proxy_renders_exactly_the_templates_placeholders(services: dict[str, Any]) -> None:
    environment = services["proxy"]["environment"]
    assert template_placeholders() == set(TEMPLATE_VARIABLES)
    substituted = re.compile(environment["NGINX_ENVSUBST_FILTER"])
    image_variables = ["NGINX_VERSION", "NJS_VERSION", "PKG_RELEASE", "NGINX_ENVSUBST_FILTER"]
    assert all(substituted.search(name) for name in TEMPLATE_VARIABLES)
    assert not any(substituted.search(name) for name in image_variables)
    for name in TEMPLATE_VARIABLES:
        assert environment[name], f"{name} is empty in compose"


# what the nginx image's /docker-entrypoint.d/20-envsubst-on-templates.sh does with a template
IMAGE_ENTRYPOINT_RENDERING = r"""
filter="${NGINX_ENVSUBST_FILTER:-}"
defined_envs=$(printf '${%s} ' $(awk \
    "END { for (name in ENVIRON) { print ( name ~ /${filter}/ ) ? name : \"\" } }" < /dev/null ))
envsubst "$defined_envs" < "$1"
"""


def test_the_images_entrypoint_renders_the_template_as_the_proxy_test_does(
    services: dict[str, Any],
) -> None:
    if not (shutil.which("envsubst") and shutil.which("awk")):
        pytest.skip("envsubst or awk missing (Debian: gettext-base, mawk)")
    environment = {
        name: with_defaults(str(value)) for name, value in services["proxy"]["environment"].items()
    }
    image_env = {"PATH": os.environ["PATH"], "NGINX_VERSION": "1.28.0", "HOME": "/root"}
    environment.pop("NGINX_ENVSUBST_OUTPUT_DIR")  # where the output goes, not a placeholder
    rendered = subprocess.run(
        ["sh", "-c", IMAGE_ENTRYPOINT_RENDERING, "sh", str(NGINX_TEMPLATE)],
        env={**image_env, **environment},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert rendered == render_nginx_template(
        {name: environment[name] for name in TEMPLATE_VARIABLES}
    )
    assert "    server api:8000 resolve;\n" in rendered
    assert "    listen 8000;\n" in rendered
    assert "resolver 127.0.0.11 valid=10s ipv6=off;\n" in rendered
    assert "$http_host" in rendered
    assert "$proxy_error_detail" in rendered


def test_the_upstream_is_the_api_service_on_its_port(services: dict[str, Any]) -> None:
    upstream = services["proxy"]["environment"]["NGINX_UPSTREAM_SERVERS"]
    assert upstream == "server api:${ATTENTION_PORT:-8000} resolve;"
    assert services["api"]["expose"] == ["${ATTENTION_PORT:-8000}"]


def test_the_cuda_override_reserves_a_gpu_and_selects_a_cuda_wheel() -> None:
    api = compose(CUDA_COMPOSE_FILE)["services"]["api"]
    name, variant = interpolation(api["build"]["args"]["TORCH_VARIANT"])
    assert (name, variant.startswith("cu")) == ("TORCH_VARIANT", True)
    [device] = api["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    assert interpolation(api["environment"]["ATTENTION_DEVICE"]) == ("ATTENTION_DEVICE", "cuda")


# -- nginx --------------------------------------------------------------------------------------


def test_the_proxys_body_limit_is_the_services() -> None:
    [size] = nginx_directives("client_max_body_size")
    assert nginx_size(size) == settings_defaults()["max_body_bytes"]


def test_the_proxy_waits_longer_than_the_services_request_timeout() -> None:
    [read_timeout] = nginx_directives("proxy_read_timeout")
    assert seconds(read_timeout) > settings_defaults()["request_timeout_s"]


def error_pages() -> dict[str, str]:
    """Every code of the template's error_page directives, with the URI it goes to."""
    pages = {}
    for page in nginx_directives("error_page"):
        *codes, uri = page.split()
        pages.update(dict.fromkeys(codes, uri))
    return pages


def test_the_proxy_passes_the_services_error_answers_unchanged() -> None:
    assert nginx_directives("proxy_intercept_errors") == ["off"]
    codes = set(error_pages())
    assert "413" in codes
    assert not {"401", "422", "429"} & codes, "codes only the service answers"


def nginx_map(variable: str) -> dict[str, str]:
    """The entries of the template's `map $status $variable { ... }` block."""
    text = NGINX_TEMPLATE.read_text()
    match = re.search(rf"map \$status \${variable} \{{(?P<body>.*?)\n\}}", text, flags=re.S)
    assert match, f"no map for ${variable}"
    entries = re.findall(r'(?m)^\s*(\w+)\s+"([^"]*)";', match["body"])
    return dict(entries)


def test_every_error_nginx_answers_itself_has_a_json_detail() -> None:
    """Each code of error_page goes to an internal JSON location; those of the shared one have
    their own sentence, plain JSON string contents."""
    pages = error_pages()
    assert {"400", "413", "494", "501", "502", "504"} <= set(pages)
    shared = "/.proxy-error"
    details = nginx_map("proxy_error_detail")
    assert {code for code, uri in pages.items() if uri == shared} | {"default"} == set(details)
    assert all('"' not in detail and "\\" not in detail for detail in details.values())
    template = NGINX_TEMPLATE.read_text()
    for uri in set(pages.values()):
        [location] = re.findall(rf"location = {re.escape(uri)} \{{(.*?)\}}", template, re.S)
        assert "internal;" in location
        assert "default_type application/json;" in location


def test_the_413_sentence_names_the_proxys_body_limit() -> None:
    [size] = nginx_directives("client_max_body_size")
    mib = nginx_size(size) // (1024 * 1024)
    assert f"{mib} MiB (client_max_body_size {size})" in nginx_map("proxy_error_detail")["413"]


def test_the_resolver_is_a_placeholder_with_dockers_dns_as_compose_default(
    services: dict[str, Any],
) -> None:
    [resolver] = nginx_directives("resolver")
    assert resolver.split()[0] == "${NGINX_RESOLVER}"
    code = "\n".join(line.split("#", 1)[0] for line in NGINX_TEMPLATE.read_text().splitlines())
    assert "127.0.0.11" not in code, "the template names no runtime's DNS"
    environment = services["proxy"]["environment"]
    assert interpolation(environment["NGINX_RESOLVER"]) == ("NGINX_RESOLVER", "127.0.0.11")


def test_the_proxys_main_context_includes_only_the_rendered_template(
    services: dict[str, Any],
) -> None:
    """The image's conf.d/default.conf (port 80) is left out by the main context itself,
    not by a tmpfs that hides it on Docker only; the temp paths and the pid file are on tmpfs."""
    proxy = services["proxy"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":") for volume in proxy["volumes"])
    assert mounts["./deploy/nginx/nginx.conf"] == "/etc/nginx/nginx.conf"
    main = NGINX_MAIN_CONTEXT.read_text()
    output_dir = proxy["environment"]["NGINX_ENVSUBST_OUTPUT_DIR"]
    assert nginx_directives("include", main) == [f"{output_dir}/*.conf"]
    tmpfs = {mount.split(":")[0] for mount in proxy["tmpfs"]}
    assert "/etc/nginx/conf.d" not in tmpfs
    assert output_dir in tmpfs
    temp_paths = [
        path
        for directive in ("client_body_temp_path", "proxy_temp_path", "pid")
        for path in nginx_directives(directive, main)
    ]
    assert len(temp_paths) == 3
    assert all(any(path.startswith(f"{mount}/") for mount in tmpfs) for path in temp_paths)


def test_the_proxy_forwards_authorization_and_the_forwarded_headers() -> None:
    headers = {value.split()[0] for value in nginx_directives("proxy_set_header")}
    assert headers >= {"Authorization", "X-Forwarded-For", "X-Forwarded-Proto", "Host"}


def test_the_proxy_drops_idle_connections_before_the_replicas_do() -> None:
    """`python -m app` keeps uvicorn's keep-alive timeout; nginx must give up first."""
    replica = inspect.signature(uvicorn.Config).parameters["timeout_keep_alive"].default
    [proxy] = nginx_directives("keepalive_timeout")
    assert seconds(proxy) < replica
    assert "timeout_keep_alive" not in (REPO_ROOT / "app" / "__main__.py").read_text()
