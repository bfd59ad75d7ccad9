"""One way to write a time in the REST API: an ISO 8601 string (`format: date-time`, UTC with its
offset). A field that carries Unix seconds instead is read as milliseconds by a browser's `new Date()`
and shows as January 1970; this walks the served OpenAPI document so such a field cannot come back.
The OpenAI-compatible `/v1` API keeps OpenAI's convention (`created`: integer Unix seconds)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import redirect_stdout
from typing import Any

from loraforge import cli_server

# A property named like a point in time: created, updated_at, saved, mtime, ts, started_time, …
# (`created_by` is a user id and `elapsed_s` a duration: they do not match).
_TIME_NAME = re.compile(r"(^|_)(at|ts|mtime|time|saved|created|updated)$")


def _served() -> dict[str, Any]:
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_server._openapi(None) == 0  # type: ignore[arg-type]
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref.rsplit("/", 1)[-1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _schemas_outside_v1(document: dict[str, Any]) -> set[str]:
    """Every component schema reachable from a path that is not under /v1."""
    schemas = document["components"]["schemas"]
    todo = [
        name
        for path, item in document["paths"].items()
        if not path.startswith("/v1/")
        for name in _refs(item)
    ]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen and name in schemas:
            seen.add(name)
            todo.extend(_refs(schemas[name]))
    return seen


def _types(prop: dict[str, Any]) -> set[str]:
    variants = prop.get("anyOf") or prop.get("oneOf") or [prop]
    return {v.get("type") for v in variants if isinstance(v.get("type"), str)} - {"null"}


def _numeric_times(document: dict[str, Any], names: set[str]) -> list[str]:
    found = []
    for name in sorted(names):
        for key, prop in (document["components"]["schemas"][name].get("properties") or {}).items():
            if _TIME_NAME.search(key) and _types(prop) & {"integer", "number"}:
                found.append(f"{name}.{key}")
    return found


def test_every_time_outside_v1_is_an_iso_8601_string() -> None:
    document = _served()
    outside = _schemas_outside_v1(document)
    # The walk sees the schemas it must (a refactor that breaks it would pass vacuously otherwise).
    assert {"JobPublic", "CheckpointPublic", "JobEventPublic", "DatasetPublic"} <= outside
    assert _numeric_times(document, outside) == []
    for name, key in [
        ("CheckpointPublic", "created_at"),
        ("JobEventPublic", "ts"),
        ("JobPublic", "created_at"),
    ]:
        assert document["components"]["schemas"][name]["properties"][key].get("format") == "date-time"


def test_the_check_tells_v1_apart_and_would_catch_unix_seconds() -> None:
    document = _served()
    everything = set(document["components"]["schemas"])
    # /v1 keeps OpenAI's integer times, and the walk leaves those schemas out …
    assert "ModelObject.created" in _numeric_times(document, everything)
    assert "ModelObject" not in _schemas_outside_v1(document)
    # … while the same kind of field on a REST schema is reported.
    document["components"]["schemas"]["JobPublic"]["properties"]["saved_at"] = {"type": "number"}
    assert _numeric_times(document, {"JobPublic"}) == ["JobPublic.saved_at"]
