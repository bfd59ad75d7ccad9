"""The one error shape: `{"error": {"code", "message", "details": [{"field", "message", "type"}]}}`.
Its models are in `api/schemas/common.py`; this module renders every error in it.

Except under `/v1` (the OpenAI-compatible API): there every error is rendered in OpenAI's shape by
`api/openai/errors.py`, chosen here by the request path.

Every 4xx/5xx leaves the server through one of these handlers, so clients parse one shape and no
stack trace ever reaches a response body (tracebacks go to the server log).
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from loraforge.api.schemas.common import ErrorBody, ErrorDetail, ErrorResponse
from loraforge.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    InsufficientStorage,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceError,
    Unavailable,
)

logger = logging.getLogger("loraforge.api")


# Declared on every router so the OpenAPI document (and the generated client) knows the shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in [
        (400, "Bad request"),
        (401, "Not authenticated"),
        (403, "Forbidden"),
        (404, "Not found"),
        (409, "Conflict"),
        (413, "Request body too large"),
        (422, "Validation error"),
        (429, "Too many requests"),
        (507, "Insufficient storage"),
    ]
}

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
    507: "insufficient_storage",
}

_DOMAIN_STATUS: list[tuple[type[ServiceError], int]] = [
    (InvalidInput, 422),
    (Conflict, 409),
    (NotFound, 404),
    (Forbidden, 403),
    (AuthenticationFailed, 401),
    (RateLimited, 429),
    (PayloadTooLarge, 413),
    (InsufficientStorage, 507),
    (Unavailable, 503),
]


# An error body stays small whatever the request held: a body can name 100k bad fields or carry a
# megabyte-long key, and echoing all of it costs more than the request did.
MAX_DETAILS = 50  # listed; the rest are counted in the message
_MAX_FIELD_CHARS = 200
_PLACED = ("query.", "path.", "header.")  # field names a service gives already located
_MAX_TEXT_CHARS = 2000


def safe_text(value: object, limit: int = _MAX_TEXT_CHARS) -> str:
    """`value` as text fit to echo: cut to `limit`, and lone surrogates (which JSON's \\u escapes can
    carry into a str but UTF-8 cannot encode) written as `\\udc80` instead of failing the response."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _more(omitted: int) -> str:
    return f" (and {omitted} more)" if omitted > 0 else ""


def error_response(
    status_code: int,
    *,
    code: str | None = None,
    message: str,
    details: list[ErrorDetail] | None = None,
    headers: dict[str, str] | None = None,
    omitted: int = 0,
) -> JSONResponse:
    """The error shape; at most MAX_DETAILS details (`omitted`: how many the caller already left out)."""
    listed = (details or [])[:MAX_DETAILS]
    omitted += len(details or []) - len(listed)
    body = ErrorResponse(
        error=ErrorBody(
            code=code or _STATUS_CODES.get(status_code, "error"),
            message=safe_text(message) + _more(omitted),
            details=[
                ErrorDetail(
                    field=None if d.field is None else safe_text(d.field, _MAX_FIELD_CHARS),
                    message=safe_text(d.message),
                    type=d.type,
                )
                for d in listed
            ],
        )
    )
    return JSONResponse(body.model_dump(), status_code=status_code, headers=headers)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _validation_message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    # pydantic prefixes messages of custom validators; the field name already says what failed.
    return message.removeprefix("Value error, ")


def _openai(request: Request) -> ModuleType | None:
    """The OpenAI-shape renderer for `/v1` requests (imported lazily: its package imports routers)."""
    from loraforge.api.openai import errors as openai_errors

    return openai_errors if openai_errors.is_openai_path(request.url.path) else None


def _openai_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first MAX_DETAILS errors, fit to echo, plus one that counts the rest."""
    shown: list[dict[str, Any]] = [
        {
            "type": error.get("type"),
            "loc": tuple(
                safe_text(p, _MAX_FIELD_CHARS) if isinstance(p, str) else p for p in error.get("loc", ())
            ),
            "msg": safe_text(error.get("msg", "invalid value")),
        }
        for error in errors[:MAX_DETAILS]
    ]
    if len(errors) > MAX_DETAILS:
        shown.append(
            {"type": "too_many_errors", "loc": (), "msg": f"{len(errors) - MAX_DETAILS} more problems"}
        )
    return shown


async def _handle_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if (openai := _openai(request)) is not None:
        return openai.validation_response(_openai_errors(errors))
    if any(error.get("type") == "json_invalid" for error in errors):
        error = errors[0]
        ctx = error.get("ctx") or {}
        position = error["loc"][-1] if error.get("loc") else None
        return error_response(
            400,
            code="malformed_json",
            message="request body is not valid JSON",
            details=[
                ErrorDetail(
                    field="body",
                    message=f"{ctx.get('error', 'JSON decode error')} at position {position}",
                    type="json_invalid",
                )
            ],
        )
    details = [
        ErrorDetail(
            field=safe_text(_field_path(error.get("loc", ())), _MAX_FIELD_CHARS),
            message=_validation_message(error),
            type=error.get("type"),
        )
        for error in errors[:MAX_DETAILS]
    ]
    fields = ", ".join(detail.field or "?" for detail in details)
    return error_response(
        422,
        code="validation_error",
        message=f"invalid input: {fields}",
        details=details,
        omitted=len(errors) - len(details),
    )


async def _handle_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    openai = _openai(request)
    if exc.status_code == 404 and request.method in {"GET", "HEAD"} and openai is None:
        # Unmatched browser paths fall through to the single-page app (history-mode routing).
        spa = getattr(request.app.state, "spa", None)
        if spa is not None:
            page = spa.response_for(request.url.path)
            if page is not None:
                return page
    headers = dict(exc.headers) if exc.headers else None
    code = _STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such route: {request.method} {request.url.path}"
    if exc.status_code == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
    if openai is not None:
        return openai.http_response(exc.status_code, safe_text(message), headers)
    return error_response(exc.status_code, code=code, message=message, headers=headers)


async def _handle_service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    # An error may name its own status (e.g. 502/504 for a failed upstream: inference/providers.py).
    status = getattr(exc, "http_status", None) or next(
        (code for cls, code in _DOMAIN_STATUS if isinstance(exc, cls)), 400
    )
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if (openai := _openai(request)) is not None:
        return openai.service_response(
            status, message=safe_text(exc.message), code=exc.code,
            fields=[safe_text(issue.field, _MAX_FIELD_CHARS) for issue in exc.fields[:1]],
            headers=headers or None,
        )  # fmt: skip
    # A service names a body field by its name; a query or path parameter comes already placed.
    details = [
        ErrorDetail(field=issue.field if issue.field.startswith(_PLACED) else f"body.{issue.field}",
                    message=issue.message)
        for issue in exc.fields[:MAX_DETAILS]
    ]  # fmt: skip
    return error_response(
        status, code=exc.code, message=exc.message, details=details, headers=headers or None,
        omitted=len(exc.fields) - len(details),
    )  # fmt: skip


async def _handle_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if (openai := _openai(request)) is not None:
        return openai.internal_response()
    return error_response(500, code="internal_error", message="internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(ServiceError, _handle_service_error)
    # Registered for Exception, Starlette runs this in its outermost middleware: the response is
    # the error shape, and the exception is re-raised afterwards only for the server's own log.
    app.add_exception_handler(Exception, _handle_unexpected)
