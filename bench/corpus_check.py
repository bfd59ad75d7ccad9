"""Judging one answer to a corpus upload (`corpus.py`): shared by `malformed_uploads.py` and the API
test. A good answer is never a 5xx, is in the endpoint's error shape, leaks no traceback or server
path, and for a row-level problem names the row (and the field, where the case sets one)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from corpus_files import Case

DATASETS = "datasets"  # POST /api/datasets (multipart, one shot)
V1_FILES = "v1_files"  # POST /v1/files, purpose fine-tune


@dataclass(frozen=True)
class Verdict:
    case: str
    category: str
    endpoint: str
    status: int
    code: str | None
    expect: str  # row | file | any
    problem: str | None  # None: a good answer
    names_row: bool | None  # row-level cases only
    names_field: bool | None  # row-level cases with a field only
    message: str


def names_row(text: str, rows: tuple[int, ...]) -> bool:
    for n in rows:
        number = f"(?:{n}|{n:,})" if n >= 1000 else str(n)
        if re.search(rf"\b(?:row|line|record)s?\s+{number}\b", text, re.IGNORECASE):
            return True
    return False


def _error_shape_ok(endpoint: str, body: Any) -> bool:
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return False
    error = body["error"]
    if endpoint == V1_FILES:
        return {"message", "type", "param", "code"} <= set(error) and bool(error.get("message"))
    return set(error) == {"code", "message", "details"} and bool(error["message"])


def _error_text(body: dict[str, Any]) -> str:
    error = body["error"]
    parts = [str(error.get("message", "")), str(error.get("param") or "")]
    for detail in error.get("details") or []:
        if isinstance(detail, dict):
            parts += [str(detail.get("field", "")), str(detail.get("message", ""))]
    return "\n".join(parts)


def judge(
    case: Case, endpoint: str, status: int, body: Any, raw: str, *, server_paths: tuple[str, ...] = ()
) -> Verdict:
    expect = case.v1_expect if endpoint == V1_FILES else case.level
    code = None
    message = ""
    problem: str | None = None
    row_named: bool | None = None
    field_named: bool | None = None
    if "Traceback" in raw or any(path and path in raw for path in server_paths):
        problem = "leaks a traceback or a server path"
    if status == 0:
        problem = f"no response ({raw[:200]})"
    elif status >= 500:
        problem = f"{status} response"
    elif status >= 400:
        if not _error_shape_ok(endpoint, body):
            problem = problem or "not the error shape"
        else:
            code = str(body["error"].get("code"))
            text = _error_text(body)
            message = str(body["error"]["message"])[:300]
            if expect == "row":
                row_named = names_row(text, case.rows)
                field_named = None if case.field is None else case.field in text
                if not row_named:
                    problem = problem or "does not name the row"
    elif expect in ("row", "file"):
        row_named, field_named, problem2, message = _accepted(case, endpoint, expect, body)
        problem = problem or problem2
    return Verdict(
        case.name, case.category, endpoint, status, code, expect, problem, row_named, field_named, message
    )


def _accepted(
    case: Case, endpoint: str, expect: str, body: Any
) -> tuple[bool | None, bool | None, str | None, str]:
    """A 2xx for a broken file: fine only for a dataset upload whose row errors name the broken row."""
    if expect == "file" or endpoint == V1_FILES:
        return None, None, "a broken file was accepted", ""
    dataset = body.get("dataset", {}) if isinstance(body, dict) else {}
    errors = [e for e in dataset.get("errors") or [] if isinstance(e, dict)]
    hits = [e for e in errors if e.get("row") in case.rows]
    if not hits:
        return False, None, "accepted without a row error for the broken row", ""
    field_named = None
    if case.field is not None:
        field_named = any(case.field in f"{e.get('field')} {e.get('message')}" for e in hits)
    first = hits[0]
    return True, field_named, None, f"row {first.get('row')}: {first.get('field')}: {first.get('message')}"


def summary(verdicts: list[Verdict]) -> dict[str, Any]:
    """The figures: statuses per endpoint, 5xx, and how often row-level errors name row and field."""
    out: dict[str, Any] = {"requests": len(verdicts), "status_counts": {}, "responses_5xx": 0}
    for endpoint in (DATASETS, V1_FILES):
        mine = [v for v in verdicts if v.endpoint == endpoint]
        out["status_counts"][endpoint] = dict(sorted(Counter(str(v.status) for v in mine).items()))
    out["responses_5xx"] = sum(1 for v in verdicts if v.status >= 500)
    row_4xx = [v for v in verdicts if v.expect == "row" and 400 <= v.status < 500]
    row_2xx = [v for v in verdicts if v.expect == "row" and v.status < 300 and v.names_row is not None]
    with_field = [v for v in row_4xx + row_2xx if v.names_field is not None]

    def fraction(hits: int, total: int) -> float | None:
        return round(hits / total, 4) if total else None

    out["row_level_4xx"] = {
        "count": len(row_4xx),
        "naming_the_row": sum(1 for v in row_4xx if v.names_row),
        "fraction": fraction(sum(1 for v in row_4xx if v.names_row), len(row_4xx)),
        "not_naming_the_row": [f"{v.endpoint} {v.case}: {v.message}" for v in row_4xx if not v.names_row],
    }
    out["row_level_accepted_with_row_errors"] = {
        "count": len(row_2xx),
        "naming_the_row": sum(1 for v in row_2xx if v.names_row),
    }
    out["field_named"] = {
        "count": len(with_field),
        "naming_the_field": sum(1 for v in with_field if v.names_field),
        "fraction": fraction(sum(1 for v in with_field if v.names_field), len(with_field)),
        "not_naming_the_field": [
            f"{v.endpoint} {v.case}: {v.message}" for v in with_field if not v.names_field
        ],
    }
    file_4xx = [v for v in verdicts if v.expect == "file" and 400 <= v.status < 500]
    out["file_level_4xx"] = {
        "count": len(file_4xx),
        "codes": dict(sorted(Counter(v.code or "?" for v in file_4xx).items())),
    }
    out["problems"] = [f"{v.endpoint} {v.case} ({v.status}): {v.problem}" for v in verdicts if v.problem]
    return out
