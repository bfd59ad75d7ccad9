"""Domain exceptions. `loraforge.api.errors` maps each class to an HTTP status and the error shape.

Services raise these and never know about HTTP; the CLI prints their messages.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldIssue:
    """A problem with one input field; `field` is the name in the request body, e.g. `username`."""

    field: str
    message: str


class ServiceError(Exception):
    """Base class. `code` is a stable snake_case identifier clients may switch on."""

    default_code = "error"

    def __init__(
        self, message: str, *, code: str | None = None, fields: list[FieldIssue] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.fields = fields or []


class InvalidInput(ServiceError):
    """Input that passed schema validation but breaks a domain rule (e.g. a weak password)."""

    default_code = "validation_error"


class Conflict(ServiceError):
    """The request clashes with current state (a taken username, removing the last admin)."""

    default_code = "conflict"


class NotFound(ServiceError):
    """The thing does not exist, or the actor may not know that it exists."""

    default_code = "not_found"


class Forbidden(ServiceError):
    """The actor is known but not allowed to do this."""

    default_code = "forbidden"


class AuthenticationFailed(ServiceError):
    """Missing, wrong, expired or revoked credentials."""

    default_code = "unauthorized"


class RateLimited(ServiceError):
    """Too many attempts; try again after `retry_after` seconds."""

    default_code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PayloadTooLarge(ServiceError):
    """The data is larger than a configured limit."""

    default_code = "payload_too_large"


class InsufficientStorage(ServiceError):
    """The server ran out of disk space; nothing was kept."""

    default_code = "insufficient_storage"


class Unavailable(ServiceError):
    """A service the request needs (e.g. the Hugging Face Hub) cannot be reached."""

    default_code = "service_unavailable"
