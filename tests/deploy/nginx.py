"""Run Debian's nginx with deploy/nginx/templates/attention.conf.template, in a temp folder.

What the test adds around the template is only what running unprivileged in a temp folder
needs: a main context (pid, error log, temp paths, `daemon off`) that includes the rendered
template, as the nginx image's own nginx.conf includes conf.d/*.conf. The template itself is
rendered with loopback servers and a free loopback port in place of compose's `api` and 8000.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.files import render_nginx_template
from tests.support.server import free_port

NGINX_PATHS = ("/usr/sbin/nginx",)

MAIN_CONTEXT = """\
# tests/deploy: the main context around the rendered template, confined to {root}
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
{user}
events {{
    worker_connections 256;
}}
http {{
    default_type application/octet-stream;
    access_log {root}/access.log;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {root}/attention.conf;
}}
"""


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return next((path for path in NGINX_PATHS if os.access(path, os.X_OK)), None)


def upstream_servers(addresses: Sequence[str]) -> str:
    """The `server` lines for the template's NGINX_UPSTREAM_SERVERS."""
    return " ".join(f"server {address};" for address in addresses)


@dataclass
class RunningProxy:
    process: subprocess.Popen[bytes]
    root: Path
    base_url: str

    def error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _user_line() -> str:
    """As root, nginx switches its workers to `nobody`, who cannot enter a private temp
    folder: keep them as the current user. Unprivileged, nginx never switches."""
    if os.geteuid() != 0:
        return ""
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    return f"user {user} {group};"


def _wait_listening(proxy: RunningProxy, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy.process.poll() is not None:
            raise RuntimeError(
                f"nginx exited with {proxy.process.returncode}\n--- error log ---\n"
                f"{proxy.error_log()}{(proxy.root / 'nginx.out').read_text(errors='replace')}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on {port} within {timeout} s\n{proxy.error_log()}")


@contextmanager
def running_proxy(nginx: str, upstreams: Sequence[str], root: Path) -> Iterator[RunningProxy]:
    """nginx in front of `upstreams` (host:port), on a free loopback port, until the end."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    rendered = render_nginx_template(
        {
            "NGINX_UPSTREAM_SERVERS": upstream_servers(upstreams),
            "NGINX_LISTEN": f"127.0.0.1:{port}",
            # only `server ... resolve` lines ask it; the tests name IP addresses
            "NGINX_RESOLVER": "127.0.0.1",
        }
    )
    (root / "attention.conf").write_text(rendered)
    (root / "nginx.conf").write_text(MAIN_CONTEXT.format(root=root, user=_user_line()))
    command = [
        nginx,
        "-p",
        str(root),
        "-e",
        str(root / "error.log"),
        "-c",
        str(root / "nginx.conf"),
    ]
    with (root / "nginx.out").open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    proxy = RunningProxy(process, root, f"http://127.0.0.1:{port}")
    try:
        _wait_listening(proxy, port)
        yield proxy
    finally:
        proxy.stop()
