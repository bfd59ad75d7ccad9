"""Server-Sent Events shared by the chat routes that stream (sending, regenerating, the playground).

Each event is `event: <name>\\ndata: <one JSON line>\\n\\n`; the JSON shapes are the `*Event` /
`MessagePublic` models in `api/schemas/chat.py`. Errors inside a stream use the same body as the
JSON error responses (`api/errors.py`), so the UI reads one shape.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from loraforge.api.schemas.chat import DeltaEvent
from loraforge.api.schemas.common import ErrorBody, ErrorDetail
from loraforge.errors import ServiceError


def stream_responses(description: str, events: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    # FastAPI files `model` under the route's media type (text/event-stream), so the event shapes
    # reach the OpenAPI components and the generated client's types.
    return {200: {"description": description, "model": events}}


def sse(event: str, payload: BaseModel | dict[str, Any]) -> bytes:
    data = (
        payload.model_dump_json(exclude_none=isinstance(payload, DeltaEvent))
        if isinstance(payload, BaseModel)
        else json.dumps(payload, separators=(",", ":"))
    )
    return f"event: {event}\ndata: {data}\n\n".encode()


def error_body(exc: ServiceError) -> ErrorBody:
    details = [ErrorDetail(field=f"body.{issue.field}", message=issue.message) for issue in exc.fields]
    return ErrorBody(code=exc.code, message=exc.message, details=details)
