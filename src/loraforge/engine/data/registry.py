"""Resolve `dataset` entries through dataset_dir/dataset_info.json (LLaMA-Factory semantics) or as paths."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# LF's column defaults per formatting; `columns` in dataset_info.json override single keys.
ALPACA_COLUMNS = {
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "history": None,
    "system": None,
    "tools": None,
    "chosen": None,
    "rejected": None,
    "kto_tag": None,
}
SHAREGPT_COLUMNS = {
    "messages": "conversations",
    "system": None,
    "tools": None,
    "chosen": None,
    "rejected": None,
    "kto_tag": None,
}
SHAREGPT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
OPENAI_TAGS = {
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
    "observation_tag": "tool",
    "function_tag": "function_call",
    "system_tag": "system",
}


class DatasetNotFoundError(ValueError):
    """A dataset name is neither in dataset_info.json nor an existing path."""


@dataclass
class DatasetAttr:
    """One dataset to load: where it is and how its rows are shaped."""

    name: str
    path: Path
    formatting: str | None = None  # alpaca | sharegpt | openai | text; None: detect from the rows
    ranking: bool = False
    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def column(self, key: str) -> str | None:
        if key in self.columns:
            return self.columns[key]
        if self.formatting == "openai" and key == "messages":
            return "messages"  # OpenAI chat rows keep their turns under `messages`, not sharegpt's key
        defaults = SHAREGPT_COLUMNS if self.formatting in ("sharegpt", "openai") else ALPACA_COLUMNS
        return defaults.get(key)

    def tag(self, key: str) -> str:
        base = OPENAI_TAGS if self.formatting == "openai" else SHAREGPT_TAGS
        return self.tags.get(key, base[key])

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "formatting": self.formatting,
            "ranking": self.ranking,
            "columns": self.columns,
            "tags": self.tags,
        }


def load_dataset_info(dataset_dir: Path) -> dict[str, Any]:
    info = dataset_dir / "dataset_info.json"
    if not info.exists():
        return {}
    data = json.loads(info.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def resolve_dataset(
    name: str,
    dataset_dir: Path,
    *,
    info: dict[str, Any],
    formatting: str | None = None,
    columns: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    ranking: bool | None = None,
) -> DatasetAttr:
    """A name from dataset_info.json (its own formatting/columns/tags/ranking win), else a file path.

    For paths, the spec-level formatting / columns / tags / ranking apply.
    """
    if name in info:
        entry = info[name]
        if "file_name" not in entry:
            hub = entry.get("hf_hub_url") or entry.get("ms_hub_url") or entry.get("script_url")
            raise DatasetNotFoundError(
                f"dataset {name!r} in dataset_info.json points to a hub dataset ({hub}); "
                "download it and add a file_name entry, or give a file path"
            )
        path = Path(entry["file_name"])
        return DatasetAttr(
            name=name,
            path=path if path.is_absolute() else dataset_dir / path,
            formatting=entry.get("formatting", "alpaca"),
            ranking=bool(entry.get("ranking", False)),
            columns=dict(entry.get("columns") or {}),
            tags=dict(entry.get("tags") or {}),
        )
    for candidate in (Path(name).expanduser(), dataset_dir / name):
        if candidate.exists():
            return DatasetAttr(
                name=name,
                path=candidate,
                formatting=formatting,
                ranking=bool(ranking),
                columns=dict(columns or {}),
                tags=dict(tags or {}),
            )
    hint = difflib.get_close_matches(name, list(info), n=1, cutoff=0.6)
    raise DatasetNotFoundError(
        f"dataset {name!r} is neither in {dataset_dir / 'dataset_info.json'} nor an existing file"
        + (f" (did you mean {hint[0]!r}?)" if hint else "")
    )
