"""The HTTP service: FastAPI in front of the `attention` library; it owns nothing mathematical."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("attention-service")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
