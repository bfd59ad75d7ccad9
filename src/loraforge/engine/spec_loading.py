"""Reading a job spec from a YAML/JSON file or a dict, reporting every problem by key.

Unknown keys are never ignored silently: `load_spec` names each one with a did-you-mean. LF keys that
are harmless here (they tune LF's own machinery, e.g. `overwrite_cache`, `plot_loss`) are accepted
and kept in `compat_ignored`, so cloning a job reproduces what the user wrote.

Torch-free: the server loads specs with it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from loraforge.engine.spec import LF_IGNORED_KEYS, JobSpec
from loraforge.engine.spec_fields import did_you_mean

# LF aliases we translate (LF key -> our key), applied before validation.
_NEGATED_ALIASES = {"disable_gradient_checkpointing": "gradient_checkpointing"}


class FieldProblem(BaseModel):
    """One problem with one key of a spec."""

    key: str
    message: str


class SpecError(ValueError):
    """A spec that cannot be used; `problems` lists each one by key, the message reads as a list."""

    def __init__(self, problems: list[FieldProblem], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        head = f"invalid job spec{f' {source}' if source else ''}: {len(problems)} problem(s)"
        super().__init__("\n".join([head, *(f"  - {p.key}: {p.message}" for p in problems)]))

    @property
    def unknown_keys(self) -> list[str]:
        return [p.key for p in self.problems if p.message.startswith("unknown key")]


def known_keys() -> set[str]:
    """Every key a spec may contain: our fields, LF aliases and LF keys accepted as no-ops."""
    return set(JobSpec.model_fields) | set(_NEGATED_ALIASES) | set(LF_IGNORED_KEYS)


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
    problems: list[FieldProblem] = []
    data: dict[str, Any] = {}
    ignored: dict[str, Any] = dict(raw.pop("compat_ignored", None) or {})

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
        else:
            problems.append(
                FieldProblem(key=str(key), message=f"unknown key{did_you_mean(str(key), known_keys())}")
            )
    if ignored:
        data["compat_ignored"] = ignored

    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems_from(exc))
        raise SpecError(problems, origin) from None
    if problems:
        raise SpecError(problems, origin)
    return spec


def _problems_from(exc: ValidationError) -> list[FieldProblem]:
    out: list[FieldProblem] = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<spec>"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required"
        if not err["loc"]:
            # cross-field problems arrive as one message; split them back into items
            for part in msg.split("; "):
                k = part.split(" ", 1)[0].rstrip(":")
                out.append(FieldProblem(key=k if k in known_keys() else "<spec>", message=part))
            continue
        out.append(FieldProblem(key=key, message=msg))
    return out


def spec_json_schema() -> dict[str, Any]:
    """The JSON schema of JobSpec (for the UI form and the REST API docs)."""
    return JobSpec.model_json_schema()


def dump_spec(spec: JobSpec) -> dict[str, Any]:
    """A JSON-ready dict that `load_spec` reads back to an equal spec."""
    return spec.model_dump(mode="json")
