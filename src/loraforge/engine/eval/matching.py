"""Answer checks that score 1.0 or 0.0 per sample: exact match, contains, regex, valid JSON.

Comparisons ignore surrounding whitespace and, unless asked otherwise, letter case: a model that
answers "Paris\n" to a reference "paris" has the answer right. JSON answers may come wrapped in a
Markdown code fence, as chat models like to write them.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)
MAX_PATTERN = 1000  # a regex is user input; a bounded pattern keeps compilation cheap


def _norm(text: str, case_sensitive: bool) -> str:
    text = " ".join(text.split())
    return text if case_sensitive else text.casefold()


def exact_match(prediction: str, reference: str, *, case_sensitive: bool = False) -> float:
    return float(_norm(prediction, case_sensitive) == _norm(reference, case_sensitive))


def contains(prediction: str, reference: str, *, case_sensitive: bool = False) -> float:
    """1.0 when the reference appears in the prediction (an empty reference matches nothing)."""
    needle = _norm(reference, case_sensitive)
    return float(bool(needle) and needle in _norm(prediction, case_sensitive))


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The pattern compiled, or ValueError with re's reason (shown to the user as a field error)."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"the pattern is longer than {MAX_PATTERN} characters")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None


def regex_match(prediction: str, pattern: re.Pattern[str]) -> float:
    """1.0 when the pattern matches anywhere in the prediction (anchor it with ^…$ for a full match)."""
    return float(pattern.search(prediction) is not None)


def parse_json_answer(prediction: str) -> Any:
    """The JSON value in the answer (fenced or bare); ValueError when there is none."""
    text = prediction.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def check_schema(schema: dict[str, Any]) -> None:
    """ValueError when `schema` is not a valid JSON Schema (caught when the evaluation is created)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from None


def valid_json(prediction: str, schema: dict[str, Any] | None = None) -> float:
    """1.0 when the answer is JSON (and, with a schema, valid against it)."""
    try:
        value = parse_json_answer(prediction)
    except ValueError:
        return 0.0
    if schema is None:
        return 1.0
    from jsonschema import Draft202012Validator

    return float(Draft202012Validator(schema).is_valid(value))
