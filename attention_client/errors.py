"""Typed errors: each carries the HTTP status and the service's `detail` (a message, or the list
of validation errors with the field at fault in `loc`)."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """The base of every error this client raises."""


class ServiceError(ClientError):
    """The service answered with an error status."""

    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"{status}: {self.message}")

    @property
    def message(self) -> str:
        if isinstance(self.detail, list):
            return "; ".join(_describe(item) for item in self.detail)
        return str(self.detail)


class InvalidRequest(ServiceError):
    """400 or 422: a field of the request is wrong; `detail` names it."""

    @property
    def fields(self) -> list[str]:
        """The fields at fault, dotted ("output.top_k"), for a 422 with a list of errors."""
        if not isinstance(self.detail, list):
            return []
        return [".".join(str(part) for part in item.get("loc", [])[1:]) for item in self.detail]


class TooLarge(ServiceError):
    """413: the request (or its answer, or its estimated memory) is over a limit the detail
    names, with what to ask for instead."""


class NotAuthorized(ServiceError):
    """401 or 403: a missing or wrong API key."""


class Overloaded(ServiceError):
    """429 or 503 after the retries: the service is busy; `retry_after` in seconds, if said."""

    def __init__(self, status: int, detail: Any, retry_after: float | None) -> None:
        super().__init__(status, detail)
        self.retry_after = retry_after


class ServerError(ServiceError):
    """Any other 5xx (504: the computation passed its deadline)."""


def _describe(item: Any) -> str:
    if isinstance(item, dict):
        where = ".".join(str(part) for part in item.get("loc", [])[1:])
        return f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", ""))
    return str(item)


def error_for(status: int, detail: Any, retry_after: float | None = None) -> ServiceError:
    if status in (400, 422):
        return InvalidRequest(status, detail)
    if status == 413:
        return TooLarge(status, detail)
    if status in (401, 403):
        return NotAuthorized(status, detail)
    if status in (429, 503):
        return Overloaded(status, detail, retry_after)
    if status >= 500:
        return ServerError(status, detail)
    return ServiceError(status, detail)
