"""Reading a job spec from a YAML/JSON file or a dict, reporting every problem by key.

Unknown keys are never ignored silently: `load_spec` names each one with a did-you-mean. LF keys that
are harmless here (they tune LF's own machinery, e.g. `overwrite_cache`, `plot_loss`) are accepted
and kept in `compat_ignored`, so cloning a job reproduces what the user wrote.

Torch-free: the server loads specs with it.
"""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from loraforge.engine.spec import LF_IGNORED_KEYS, JobSpec
from loraforge.engine.spec_fields import did_you_mean

# LF aliases we translate (LF key -> our key), applied before validation.
_NEGATED_ALIASES = {"disable_gradient_checkpointing": "gradient_checkpointing"}

# The shape any spec must have before its keys are looked at. A real spec has at most the ~140 known
# keys with values a few levels deep; these bounds leave room for every one of them while keeping the
# cost of rejecting a hostile one (100k keys, deep nesting, megabyte keys) to milliseconds.
MAX_SPEC_KEYS = 256
MAX_SPEC_DEPTH = 8  # the spec itself is level 1; `columns: {...}` is level 2
MAX_SPEC_VALUES = 10_000  # every key, list item and scalar, at any depth
MAX_KEY_CHARS = 128
# Problems reported per spec; the rest are only counted (a did-you-mean per key is not free).
MAX_PROBLEMS = 50


class FieldProblem(BaseModel):
    """One problem with one key of a spec."""

    key: str
    message: str


class SpecError(ValueError):
    """A spec that cannot be used; `problems` lists each one by key, the message reads as a list."""

    def __init__(self, problems: list[FieldProblem], source: str | None = None, *, omitted: int = 0) -> None:
        self.problems = problems[:MAX_PROBLEMS]
        self.omitted = omitted + len(problems) - len(self.problems)  # counted, not listed
        self.source = source
        total = len(self.problems) + self.omitted
        head = f"invalid job spec{f' {source}' if source else ''}: {total} problem(s)"
        lines = [head, *(f"  - {p.key}: {p.message}" for p in self.problems)]
        if self.omitted:
            lines.append(f"  ... and {self.omitted} more")
        super().__init__("\n".join(lines))

    @property
    def unknown_keys(self) -> list[str]:
        return [p.key for p in self.problems if p.message.startswith("unknown key")]


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(JobSpec.model_fields) | frozenset(_NEGATED_ALIASES) | frozenset(LF_IGNORED_KEYS)


def known_keys() -> set[str]:
    """Every key a spec may contain: our fields, LF aliases and LF keys accepted as no-ops."""
    return set(_known())


def shown_key(key: Any) -> str:
    """A key as error messages name it: cut to MAX_KEY_CHARS so an error never echoes a huge key."""
    text = str(key)
    return text if len(text) <= MAX_KEY_CHARS else text[:MAX_KEY_CHARS] + "…"


_NOT_UNICODE = "text must be valid Unicode (a lone surrogate such as \\udc80 is not)"


def _is_unicode(text: str) -> bool:
    # JSON's \u escapes can put a lone surrogate into a str; it cannot be stored or sent as UTF-8.
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shape_problem(spec: Any) -> FieldProblem | None:
    """The first way `spec` breaks the bounds (keys, key length, depth, values, NaN), or None.

    Linear in the size of the input and stops at the first excess, so it is the cheap check to run
    before anything more expensive (did-you-mean, validation, storing it as JSON).
    """
    if not isinstance(spec, dict):
        return FieldProblem(key="<spec>", message="the spec must be a mapping of keys to values")
    if len(spec) > MAX_SPEC_KEYS:
        return FieldProblem(key="<spec>", message=f"{len(spec)} keys; a spec has at most {MAX_SPEC_KEYS}")
    for key in spec:
        if len(str(key)) > MAX_KEY_CHARS:
            return FieldProblem(key=shown_key(key), message=f"keys are at most {MAX_KEY_CHARS} characters")
        if not _is_unicode(str(key)):
            return FieldProblem(key="<spec>", message=_NOT_UNICODE)
    # An explicit stack, not recursion: a deep value must not be able to raise RecursionError.
    stack: list[tuple[str, Any, int]] = [(str(k), v, 2) for k, v in spec.items()]
    seen = len(stack)
    while stack:
        top, value, depth = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            # NaN and infinities are not JSON: stored or echoed, they would fail later.
            return FieldProblem(key=top, message="numbers must be finite (no NaN or infinity)")
        if isinstance(value, str) and not _is_unicode(value):
            return FieldProblem(key=top, message=_NOT_UNICODE)
        if isinstance(value, dict | list | tuple):
            if depth > MAX_SPEC_DEPTH:
                return FieldProblem(key=top, message=f"nested deeper than {MAX_SPEC_DEPTH} levels")
            seen += len(value)
            if seen > MAX_SPEC_VALUES:
                return FieldProblem(key=top, message=f"a spec holds at most {MAX_SPEC_VALUES} values in all")
            if isinstance(value, dict) and not all(_is_unicode(str(k)) for k in value):
                return FieldProblem(key=top, message=_NOT_UNICODE)
            items = value.values() if isinstance(value, dict) else value
            stack.extend((top, item, depth + 1) for item in items)
    return None


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(
            [FieldProblem(key="<root>", message="the spec must be a mapping of keys to values")], str(path)
        )
    return data


def load_spec(source: str | os.PathLike[str] | dict[str, Any]) -> JobSpec:
    """Read a spec from a YAML/JSON file or a dict and validate it.

    Raises `SpecError` naming every problem by key (unknown keys with a did-you-mean, type errors,
    cross-field conflicts) rather than stopping at the first.
    """
    origin = None if isinstance(source, dict) else str(source)
    raw = dict(source) if isinstance(source, dict) else _read(Path(source))
    too_big = shape_problem(raw)
    if too_big is not None:
        raise SpecError([too_big], origin)
    problems: list[FieldProblem] = []
    omitted = 0
    data: dict[str, Any] = {}
    ignored = raw.pop("compat_ignored", None) or {}
    if not isinstance(ignored, dict):
        raise SpecError([FieldProblem(key="compat_ignored", message="must be a mapping")], origin)
    ignored = dict(ignored)

    fields = set(JobSpec.model_fields)
    for key, value in raw.items():
        if key in fields:
            data[key] = value
        elif key in _NEGATED_ALIASES:
            target = _NEGATED_ALIASES[key]
            if value is None:
                continue
            if target in raw and bool(raw[target]) == bool(value):
                problems.append(FieldProblem(key=key, message=f"contradicts {target}: {raw[target]}"))
                continue
            data[target] = not bool(value)
        elif key in LF_IGNORED_KEYS:
            ignored[key] = value
        elif len(problems) >= MAX_PROBLEMS:
            omitted += 1  # counted only: a did-you-mean for each of thousands of keys is the slow part
        else:
            hint = did_you_mean(str(key), _known())
            problems.append(FieldProblem(key=shown_key(key), message=f"unknown key{hint}"))
    if ignored:
        data["compat_ignored"] = ignored

    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems_from(exc))
        raise SpecError(problems, origin, omitted=omitted) from None
    if problems:
        raise SpecError(problems, origin, omitted=omitted)
    return spec


def _problems_from(exc: ValidationError) -> list[FieldProblem]:
    out: list[FieldProblem] = []
    for err in exc.errors():
        key = shown_key(".".join(str(p) for p in err["loc"]) or "<spec>")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required"
        if not err["loc"]:
            # cross-field problems arrive as one message; split them back into items
            for part in msg.split("; "):
                k = part.split(" ", 1)[0].rstrip(":")
                out.append(FieldProblem(key=k if k in _known() else "<spec>", message=part))
            continue
        out.append(FieldProblem(key=key, message=msg))
    return out


def spec_json_schema() -> dict[str, Any]:
    """The JSON schema of JobSpec (for the UI form and the REST API docs)."""
    return JobSpec.model_json_schema()


def dump_spec(spec: JobSpec) -> dict[str, Any]:
    """A JSON-ready dict that `load_spec` reads back to an equal spec."""
    return spec.model_dump(mode="json")
