"""An evaluation job's test set, written from the pinned dataset version the way training data is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loraforge.services.jobs.specs import engine_row

TEST_FILE = "data/test.jsonl"
# Our split names -> the mark a preprocessed version's rows carry ("all": every row).
SPLIT_MARKS = {"test": "validation", "train": "train"}


def write_test_rows(normalized: Path, run_dir: Path, fmt: str, split: str) -> dict[str, Any]:
    """An evaluation's test set: the version's rows of `split` as engine rows, in RUN_DIR/data/test.jsonl,
    written like training data (same conversion); returns the keys that point the engine at it and the
    row count. Preference rows are scored against their chosen answer."""
    target = run_dir / TEST_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    mark = SPLIT_MARKS.get(split)
    count = 0
    with normalized.open(encoding="utf-8") as src, target.open("w", encoding="utf-8") as out:
        for line in src:
            if not line.strip():
                continue
            example = json.loads(line)
            if mark is not None and example.get("split", "train") != mark:
                continue
            row = engine_row(example, "text" if fmt == "text" else "chat")
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    keys: dict[str, Any] = {"eval_dataset": [str(target)], "rows": count}
    if fmt == "text":
        keys.update(formatting="text", columns={"prompt": "text"})
    else:
        keys.update(formatting="openai", columns={"messages": "messages", "tools": "tools"})
    return keys
