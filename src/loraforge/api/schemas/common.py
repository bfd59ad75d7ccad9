"""The base classes of every REST request and response model, and the one error shape.

Request models forbid unknown fields so a typo in a client is an error, not a silently ignored value;
response models read ORM rows and service results by attribute. The error models are what
`api/errors.py` renders for every 4xx/5xx: `{"error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from loraforge.engine.spec_loading import MAX_SPEC_DEPTH, MAX_SPEC_KEYS, MAX_SPEC_VALUES, shape_problem
from loraforge.services.platform.owner_names import NAME_MAX_LENGTH


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The name (or title) of anything a person names: jobs, datasets, models, templates, prompts,
# conversations. One bound everywhere so a 600-character name is a 422 naming the field, not a toast
# that runs off the screen; resources with a stricter rule (API keys, providers) keep theirs.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH)]


def at_most(limit: int, what: str = "items") -> BeforeValidator:
    """Refuse a list (or mapping) longer than `limit` before its items are validated one by one.

    Pydantic's own `max_length` is checked only after every item was validated (and every error
    collected), so 60,000 chat messages cost seconds before the 422; this costs a `len()`.
    Keep `Field(max_length=...)` next to it for the JSON schema.
    """

    def check(value: Any) -> Any:
        if isinstance(value, list | dict) and len(value) > limit:
            raise ValueError(f"at most {limit} {what}, not {len(value)}")
        return value

    return BeforeValidator(check)


def _spec_shape(value: Any) -> Any:
    problem = shape_problem(value) if isinstance(value, dict) else None
    if problem is not None:
        raise ValueError(problem.message if problem.key == "<spec>" else f"{problem.key}: {problem.message}")
    return value


# A job spec (or a patch of one) in a request body: the engine's size bounds (keys, nesting, values;
# `engine.spec_loading`) are checked before anything else reads it, so a spec of 100k keys is a 422 in
# milliseconds with one detail, not seconds of did-you-means and a megabyte of error.
SPEC_LIMITS = (
    f"At most {MAX_SPEC_KEYS} keys, nested at most {MAX_SPEC_DEPTH} levels, {MAX_SPEC_VALUES} values in all."
)
SpecObject = Annotated[dict[str, Any], BeforeValidator(_spec_shape), Field(max_length=MAX_SPEC_KEYS)]


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
