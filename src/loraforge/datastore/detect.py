"""Format detection with evidence, and the mapping (LLaMA-Factory `dataset_info.json` style) to rows.

Platform formats: alpaca, sharegpt, messages (OpenAI role/content), preference (chosen/rejected in any
of those shapes), kto (messages + boolean label), text, and multiple_choice (questions with options and
an answer letter, for evaluation only: `datastore/choice.py`). Row conversion reuses the engine's
`loraforge.engine.data.formats` so the server validates exactly what training will read.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from loraforge.datastore import choice
from loraforge.datastore.sniffing import IngestError
from loraforge.engine.data.formats import RowError, detect_formatting, detect_kind
from loraforge.engine.data.registry import DatasetAttr

FORMATS = ("alpaca", "sharegpt", "messages", "preference", "kto", "text", choice.FORMAT)
SAMPLE_ROWS = 200
_KNOWN_KEYS = (
    "instruction", "input", "output", "history", "system", "prompt", "response", "completion",
    "conversations", "conversation", "messages", "chosen", "rejected", "label", "text", "content", "tools",
    "question", "answer", "options", "choices", "subject", "category", "A", "B", "C", "D",
)  # fmt: skip


def row_kind(row: dict[str, Any]) -> str | None:
    """The platform format one row looks like, or None when its keys say nothing."""
    if choice.columns_of(row) is not None:
        return choice.FORMAT
    attr = DatasetAttr(name="", path=None)  # type: ignore[arg-type]
    try:
        formatting = detect_formatting(row, attr)
    except RowError:
        return None
    attr.formatting = formatting
    if formatting == "alpaca" and "instruction" in row and not attr.ranking and not attr.column("kto_tag"):
        return "alpaca"
    if formatting == "alpaca" and "prompt" in row and "label" in row and isinstance(row["label"], bool):
        return "kto"
    kind = detect_kind(attr, row)
    return "messages" if kind == "openai" else kind


def attr_for(kind: str, row: dict[str, Any] | None) -> DatasetAttr:
    """A DatasetAttr (columns/tags) for rows of `kind`, filled in from one example row's keys."""
    attr = DatasetAttr(name="", path=None)  # type: ignore[arg-type]
    sample = row or {}
    if kind == choice.FORMAT:
        columns = choice.columns_of(sample)
        if columns is None:
            raise IngestError(
                "unknown_format",
                f"no multiple-choice columns among {sorted(sample)[:20]}: a question needs a question "
                "column, options A, B, ... (or a list `options`/`choices`) and an `answer`; give a "
                "mapping to name them",
            )
        attr.formatting = choice.FORMAT
        attr.columns = columns
        return attr
    if kind == "text":
        attr.formatting = "text"
        attr.columns["prompt"] = "text" if "text" in sample or "content" not in sample else "content"
        return attr
    try:
        attr.formatting = detect_formatting(sample, attr) if sample else None
    except RowError:
        attr.formatting = None
    if kind == "alpaca":
        if attr.formatting not in ("alpaca",):
            attr.formatting, attr.columns = "alpaca", {}
    elif kind == "sharegpt":
        attr.formatting = "sharegpt"
    elif kind == "messages":
        attr.formatting = "openai"
        if "messages" not in attr.columns:
            attr.columns["messages"] = "messages"
    elif kind == "preference":
        attr.ranking = True
        attr.formatting = attr.formatting if attr.formatting in ("sharegpt", "openai", "alpaca") else "alpaca"
    elif kind == "kto":
        attr.columns.setdefault("kto_tag", "label")
        if attr.formatting not in ("sharegpt", "openai"):
            attr.formatting = "alpaca"
            if "prompt" in sample:
                attr.columns.setdefault("prompt", "prompt")
                attr.columns.setdefault("response", "completion" if "completion" in sample else "response")
    if attr.formatting == "text":
        attr.formatting = "alpaca"
    return attr


def attr_from_mapping(mapping: dict[str, Any]) -> DatasetAttr:
    """A DatasetAttr from a dataset_info.json entry (`formatting`, `ranking`, `columns`, `tags`)."""
    formatting = mapping.get("formatting") or "alpaca"
    if formatting not in ("alpaca", "sharegpt", "openai", "text", choice.FORMAT):
        raise IngestError(
            "invalid_mapping",
            "mapping.formatting must be alpaca, sharegpt, openai, text or multiple_choice, "
            f"not {formatting!r}",
        )
    columns = mapping.get("columns") or {}
    tags = mapping.get("tags") or {}
    if not isinstance(columns, dict) or not isinstance(tags, dict):
        raise IngestError("invalid_mapping", "mapping.columns and mapping.tags must be objects of strings")
    if formatting == choice.FORMAT:
        problem = choice.check_mapping({str(k): str(v) for k, v in columns.items() if v is not None})
        if problem is not None:
            raise IngestError(
                "invalid_mapping", problem, details=[{"field": "mapping.columns", "message": problem}]
            )
    return DatasetAttr(
        name="",
        path=None,  # type: ignore[arg-type]
        formatting=formatting,
        ranking=bool(mapping.get("ranking", False)),
        columns={str(k): str(v) for k, v in columns.items() if v is not None},
        tags={str(k): str(v) for k, v in tags.items() if v is not None},
    )


def kind_of(attr: DatasetAttr, first_row: dict[str, Any] | None) -> str:
    if attr.formatting == choice.FORMAT:
        return choice.FORMAT
    kind = detect_kind(attr, first_row)
    if attr.formatting == "text":
        return "text"
    return "messages" if kind == "openai" else kind


def describe(attr: DatasetAttr) -> dict[str, Any]:
    return {
        "formatting": attr.formatting,
        "ranking": attr.ranking,
        "columns": attr.columns,
        "tags": attr.tags,
    }


# What rows of a richer format have that rows of the plainer ones lack: in a mix, the plainer rows are
# most likely broken rows of the richer format, so the message names the field they miss.
_RICHER = {"kto": "true/false `label`", "preference": "`chosen`/`rejected` pair"}
_CHAT_KEYS = ("messages", "conversations", "conversation")


def _lacks(kind: str, known: dict[str, int]) -> str:
    richer = [r for r in _RICHER if r in known and r != kind and kind not in _RICHER]
    return f"; these rows have no {_RICHER[richer[0]]}, as the {richer[0]} rows do" if richer else ""


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _chat_column_problem(sample: list[tuple[int, dict[str, Any]]]) -> str:
    """Why the first row with a chat column matches no format: its value is not a list of messages."""
    for number, row in sample:
        for key in _CHAT_KEYS:
            if key in row:
                value = row[key]
                if not isinstance(value, list):
                    what = _json_type(value)
                else:
                    what = f"a list whose first item is {_json_type(value[0])}" if value else "an empty list"
                return f" (row {number:,}: `{key}` must be a non-empty list of message objects, not {what})"
    return ""


def detect(
    sample: list[tuple[int, dict[str, Any]]], *, override: str | None, mapping: dict[str, Any] | None
) -> tuple[str, DatasetAttr, dict[str, Any]]:
    """(format, attr, evidence) from the first rows, an override and/or a mapping.

    Raises IngestError when the sampled rows mix formats or match none (set `format` to force one).
    """
    votes: Counter[str] = Counter()
    first_of: dict[str, int] = {}
    keys: Counter[str] = Counter()
    for number, row in sample:
        kind = row_kind(row) or "unknown"
        votes[kind] += 1
        first_of.setdefault(kind, number)
        keys.update(k for k in row if k in _KNOWN_KEYS)
    evidence: dict[str, Any] = {
        "sampled_rows": len(sample),
        "votes": dict(votes),
        "matched_keys": sorted(keys),
        "first_row_of": first_of,
    }
    first_row = sample[0][1] if sample else None
    if mapping:
        attr = attr_from_mapping(mapping)
        fmt = override or kind_of(attr, first_row)
        if (fmt == choice.FORMAT) != (attr.formatting == choice.FORMAT):
            raise IngestError(
                "invalid_mapping",
                f"format {choice.FORMAT} goes with mapping.formatting {choice.FORMAT} (and only with it)",
            )
        evidence["source"] = "mapping"
        return fmt, attr, evidence
    if override:
        if override not in FORMATS:
            raise IngestError("invalid_format", f"format must be one of {', '.join(FORMATS)}")
        matching: dict[str, Any] | None = next((r for _n, r in sample if row_kind(r) == override), None)
        evidence["source"] = "override"
        return override, attr_for(override, matching or first_row), evidence
    known = {k: v for k, v in votes.items() if k != "unknown"}
    if not known:
        raise IngestError(
            "unknown_format",
            f"cannot tell the format from the keys {sorted(first_row or {})} of the first rows"
            f"{_chat_column_problem(sample)}; choose a format ({', '.join(FORMATS)}) or give a column "
            "mapping",
        )
    if len(known) > 1:
        parts = ", ".join(
            f"{k} ({v} rows, first at row {first_of[k]:,}{_lacks(k, known)})"
            for k, v in sorted(known.items())
        )
        raise IngestError(
            "mixed_formats",
            f"the first {len(sample)} rows mix formats: {parts}; split the file, or choose a format to "
            "import the matching rows (the others are reported as invalid)",
            details=[
                {"field": "format", "message": f"{k}: first at row {first_of[k]}"} for k in sorted(known)
            ],
        )
    fmt = next(iter(known))
    row = next(r for _n, r in sample if row_kind(r) == fmt)
    evidence["source"] = "detected"
    return fmt, attr_for(fmt, row), evidence
