"""Turn raw rows of any supported format into one example shape.

An example is a dict:
    prompt:   [{"role": "user"|"assistant", "content": str}, ...]  alternating, ending with a user turn
    response: [{"role": "assistant", ...}]  one answer (sft), [chosen, rejected] (ranking), [] (text)
    system:   str   ("" when none)
    tools:    str   ("" when none)
    label:    bool | None   (KTO's desirable / undesirable tag)
Rows that cannot be converted raise `RowError` with a field path ("conversations[2].from").
"""

from __future__ import annotations

import json
from typing import Any

from loraforge.engine.data.registry import DatasetAttr

Example = dict[str, Any]


class RowError(ValueError):
    """One row is malformed; `field` says where (e.g. conversations[1].value)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def detect_formatting(row: dict[str, Any], attr: DatasetAttr) -> str:
    """Guess a file's format from its first row (only for file paths without `formatting`)."""
    for key in ("messages", "conversations", "conversation"):
        value = row.get(key)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            attr.columns.setdefault("messages", key)
            if "chosen" in row and "rejected" in row:
                attr.ranking = True
            if "label" in row and isinstance(row["label"], bool):
                attr.columns.setdefault("kto_tag", "label")
            return "openai" if "role" in value[0] else "sharegpt"
    if "chosen" in row and "rejected" in row:
        attr.ranking = True
    if "instruction" in row or "output" in row:
        return "alpaca"
    if "prompt" in row:  # prompt/response (or prompt/chosen/rejected) columns
        attr.columns.setdefault("prompt", "prompt")
        attr.columns.setdefault("response", "response" if "response" in row else "completion")
        return "alpaca"
    if "text" in row or "content" in row:
        attr.columns.setdefault("prompt", "text" if "text" in row else "content")
        return "text"
    raise RowError("<row>", f"cannot tell the format from the keys {sorted(row)}; set `formatting`")


def detect_kind(attr: DatasetAttr, first_row: dict[str, Any] | None = None) -> str:
    """A short name for stats: alpaca, sharegpt, openai, text, preference or kto."""
    if attr.ranking:
        return "preference"
    if attr.column("kto_tag"):
        return "kto"
    formatting = attr.formatting or "alpaca"
    if formatting == "alpaca" and first_row is not None and attr.column("response") not in first_row:
        return "text"  # LF maps plain text to an alpaca prompt column (`columns: {prompt: text}`)
    return formatting


def convert_row(row: dict[str, Any], attr: DatasetAttr) -> Example:
    try:
        if attr.formatting in ("sharegpt", "openai"):
            return _from_sharegpt(row, attr)
        if attr.formatting == "text":
            return _from_text(row, attr)
        return _from_alpaca(row, attr)
    except RecursionError:
        # A value nested close to the parser's limit still parses, but turning it into text recurses
        # once per level (json.dumps, str) and runs out of stack: the row is refused, not the request.
        raise RowError("<row>", "nested too deeply (arrays and objects about 1,000 levels deep)") from None


# ---- alpaca --------------------------------------------------------------------------------------
def _text(row: dict[str, Any], col: str | None, *, required: bool = False) -> str:
    if not col:
        return ""
    value = row.get(col)
    if value is None:
        if required:
            raise RowError(col, "missing")
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _from_alpaca(row: dict[str, Any], attr: DatasetAttr) -> Example:
    prompt_col = attr.column("prompt")
    instruction = _text(row, prompt_col, required=True)
    query = _text(row, attr.column("query"))
    content = "\n".join(part for part in (instruction, query) if part)
    if not content.strip():
        raise RowError(prompt_col or "instruction", "empty prompt")

    prompt: list[dict[str, str]] = []
    history_col = attr.column("history")
    history = row.get(history_col) if history_col else None
    if history:
        if not isinstance(history, list):
            raise RowError(history_col or "history", "must be a list of [query, answer] pairs")
        for i, pair in enumerate(history):
            if not (isinstance(pair, list | tuple) and len(pair) == 2):
                raise RowError(f"{history_col}[{i}]", "must be a [query, answer] pair")
            prompt += [
                {"role": "user", "content": str(pair[0])},
                {"role": "assistant", "content": str(pair[1])},
            ]
    prompt.append({"role": "user", "content": content})

    label = _kto_label(row, attr)
    if attr.ranking:
        chosen = _text(row, attr.column("chosen") or "chosen", required=True)
        rejected = _text(row, attr.column("rejected") or "rejected", required=True)
        response = [{"role": "assistant", "content": chosen}, {"role": "assistant", "content": rejected}]
    else:
        response_col = attr.column("response")
        answer = row.get(response_col) if response_col else None
        if isinstance(answer, list):  # LF allows a list of candidate answers; keep the first
            answer = answer[0] if answer else None
        response = [] if answer in (None, "") else [{"role": "assistant", "content": str(answer)}]
    return {
        "prompt": prompt,
        "response": response,
        "system": _text(row, attr.column("system")),
        "tools": _text(row, attr.column("tools")),
        "label": label,
    }


def _from_text(row: dict[str, Any], attr: DatasetAttr) -> Example:
    col = attr.column("prompt") or "text"
    text = _text(row, col, required=True)
    if not text.strip():
        raise RowError(col, "empty text")
    return {
        "prompt": [{"role": "user", "content": text}],
        "response": [],
        "system": "",
        "tools": "",
        "label": None,
    }


def _kto_label(row: dict[str, Any], attr: DatasetAttr) -> bool | None:
    col = attr.column("kto_tag")
    if not col:
        return None
    value = row.get(col)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise RowError(col, f"KTO label must be true/false, got {value!r}")


# ---- sharegpt / openai messages -------------------------------------------------------------------
def _from_sharegpt(row: dict[str, Any], attr: DatasetAttr) -> Example:
    col = attr.column("messages") or ("messages" if attr.formatting == "openai" else "conversations")
    messages = row.get(col)
    if not isinstance(messages, list) or not messages:
        raise RowError(col, "missing or not a non-empty list of messages")
    role_tag, content_tag = attr.tag("role_tag"), attr.tag("content_tag")
    user_roles = {attr.tag("user_tag"), attr.tag("observation_tag")}
    assistant_roles = {attr.tag("assistant_tag"), attr.tag("function_tag")}
    system_role = attr.tag("system_tag")

    system = _text(row, attr.column("system"))
    start = 0
    first = messages[0]
    if isinstance(first, dict) and first.get(role_tag) == system_role:
        system = str(first.get(content_tag) or "")
        start = 1

    turns: list[dict[str, str]] = []
    for i, msg in enumerate(messages[start:], start):
        path = f"{col}[{i}]"
        if not isinstance(msg, dict):
            raise RowError(path, "must be an object")
        role = msg.get(role_tag)
        expect_user = (i - start) % 2 == 0
        allowed = user_roles if expect_user else assistant_roles
        if role not in allowed:
            kind = "user" if expect_user else "assistant"
            raise RowError(
                f"{path}.{role_tag}", f"expected a {kind} turn ({' or '.join(sorted(allowed))}), got {role!r}"
            )
        content = msg.get(content_tag)
        if content is None:
            raise RowError(f"{path}.{content_tag}", "missing")
        if isinstance(content, list):  # OpenAI content parts: keep the text parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        role_name = {
            attr.tag("observation_tag"): "observation",
            attr.tag("function_tag"): "function_call",
        }.get(role, "user" if expect_user else "assistant")
        turns.append({"role": role_name, "content": str(content)})

    label = _kto_label(row, attr)
    if attr.ranking:
        if len(turns) % 2 != 1:
            raise RowError(col, "a preference example must end with a user turn")
        response = [
            _ranked(row, attr.column("chosen") or "chosen", content_tag, attr),
            _ranked(row, attr.column("rejected") or "rejected", content_tag, attr),
        ]
        prompt = turns
    else:
        if len(turns) < 2 or len(turns) % 2 != 0:
            raise RowError(
                col, f"needs user/assistant pairs ending with an assistant turn, got {len(turns)} turns"
            )
        prompt, response = turns[:-1], turns[-1:]
    return {
        "prompt": prompt,
        "response": response,
        "system": system,
        "tools": _text(row, attr.column("tools")),
        "label": label,
    }


def _ranked(row: dict[str, Any], col: str, content_tag: str, attr: DatasetAttr) -> dict[str, str]:
    value = row.get(col)
    if isinstance(value, dict):
        content = value.get(content_tag)
        if content is None:
            raise RowError(f"{col}.{content_tag}", "missing")
        return {"role": "assistant", "content": str(content)}
    if isinstance(value, str) and value:
        return {"role": "assistant", "content": value}
    if isinstance(value, list) and value and isinstance(value[-1], dict):  # OpenAI-style message list
        return {"role": "assistant", "content": str(value[-1].get(content_tag, ""))}
    raise RowError(col, "missing preference answer")
