"""OpenAI's error shape for everything under `/v1`: `{"error": {"message", "type", "param", "code"}}`.

`api/errors.py` hands every error of a `/v1` request here, so the official `openai` client raises
its usual exceptions (BadRequestError with `param`, AuthenticationError, NotFoundError, …).
Differences from `/api`: request-body problems are 400 (OpenAI's status, not 422), and `param`
names the offending field the way OpenAI does (`messages[0].role`, without the `body.` prefix).
This module imports nothing from the routers, so `api/errors.py` can import it freely.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

OPENAI_PREFIX = "/v1"

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class OpenAIErrorBody(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, authentication_error, permission_error, …")
    param: str | None = Field(default=None, description="The request field at fault, e.g. `temperature`.")
    code: str | None = Field(
        default=None, description="Stable snake_case identifier, e.g. `model_not_found`."
    )


class OpenAIErrorResponse(BaseModel):
    error: OpenAIErrorBody


# For the routers' `responses=`: the shape every /v1 error has. "4XX" also keeps FastAPI from
# documenting its default 422 body, which /v1 never sends (bad input is a 400 here).
_DESCRIPTIONS: list[tuple[int | str, str]] = [
    ("4XX", "Client error"),
    (400, "Invalid request"),
    (401, "Not authenticated"),
    (404, "Not found"),
    (429, "Too many requests"),
    (502, "The upstream model server failed"),
    (503, "The model cannot be served now"),
    (504, "The upstream model server timed out"),
]
OPENAI_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorResponse, "description": description}
    for status, description in _DESCRIPTIONS
}


def is_openai_path(path: str) -> bool:
    return path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/")


def error_type(status: int) -> str:
    return _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def error_body(
    status: int, *, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The body as a dict (also what a failing stream sends as its last `data:` event)."""
    body = OpenAIErrorResponse(
        error=OpenAIErrorBody(message=message, type=error_type(status), param=param, code=code)
    )
    return body.model_dump()


def openai_error(
    status: int,
    *,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(status, message=message, param=param, code=code), status_code=status, headers=headers
    )


_PRIMITIVES = frozenset({"str", "int", "float", "bool", "none", "dict", "list", "bytes"})


def _is_union_member(part: str) -> bool:
    # `str`, `list[TextPart]`, `function-after[...]`, or a model's class name (fields are snake_case).
    return part in _PRIMITIVES or "[" in part or part[:1].isupper()


def param_path(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """`("body", "messages", 0, "role")` → `messages[0].role`; None for the body as a whole."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _is_union_member(str(part)):
            continue  # pydantic's names for union members: not part of the caller's field path
        else:
            out += f".{part}" if out else str(part)
    return out or None


def _validation_code(kind: str) -> str:
    if kind == "missing":
        return "missing_required_parameter"
    if kind == "extra_forbidden":
        return "unknown_parameter"
    if kind.endswith(("_type", "_parsing")):  # e.g. string_type, float_parsing
        return "invalid_type"
    return "invalid_value"


def validation_response(errors: list[dict[str, Any]]) -> JSONResponse:
    """400 for the first problem (OpenAI reports one `param`); the message lists every one."""
    if any(error.get("type") == "json_invalid" for error in errors):
        return openai_error(
            400, message="We could not parse the JSON body of your request.", code="invalid_json"
        )
    if not errors:
        return openai_error(400, message="invalid request", code="invalid_value")
    first = errors[0]
    param = param_path(first.get("loc", ()))
    messages = []
    for error in errors:
        where = param_path(error.get("loc", ())) or "body"
        text = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        messages.append(f"{where}: {text}")
    return openai_error(
        400,
        message="Invalid request: " + "; ".join(messages),
        param=param,
        code=_validation_code(str(first.get("type", ""))),
    )


def http_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(status)
    return openai_error(status, message=message, code=code, headers=headers)


def service_response(
    status: int,
    *,
    message: str,
    code: str | None,
    fields: list[str],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    # A domain rule broken by the request body is OpenAI's 400, not /api's 422.
    if status == 422:
        status = 400
    return openai_error(
        status, message=message, param=fields[0] if fields else None, code=code, headers=headers
    )


def internal_response() -> JSONResponse:
    return openai_error(
        500, message="The server had an error while processing your request.", code="internal_error"
    )
