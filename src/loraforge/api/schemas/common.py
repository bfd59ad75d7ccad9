"""The base classes of every REST request and response model, and the one error shape.

Request models forbid unknown fields so a typo in a client is an error, not a silently ignored value;
response models read ORM rows and service results by attribute. The error models are what
`api/errors.py` renders for every 4xx/5xx: `{"error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorDetail(BaseModel):
    field: str | None = Field(default=None, description="Path of the offending input, e.g. `body.username`.")
    message: str
    type: str | None = Field(default=None, description="Machine-readable kind of problem, when known.")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable snake_case identifier, e.g. `validation_error`, `not_found`.")
    message: str = Field(description="Human-readable explanation.")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorBody
