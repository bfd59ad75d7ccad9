"""Dataset statistics, accumulated row by row while a version is written.

Token counts are a fast approximation (about 4 characters per token for Latin text, one per CJK
character) flagged `approximate: true`, unless a locally registered tokenizer is asked for
(`<data_dir>/models/<name>/tokenizer.json`, loaded with `tokenizers` only).
"""

from __future__ import annotations

import json
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

TOKEN_EDGES = (0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


def example_text(example: dict[str, Any]) -> str:
    parts = [example.get("system") or ""]
    parts += [turn.get("content", "") for turn in example.get("prompt", [])]
    parts += [turn.get("content", "") for turn in example.get("response", [])]
    return "\n".join(p for p in parts if p)


def approx_tokens(text: str) -> int:
    n = len(text)
    if text.isascii():
        return (n + 3) // 4
    extra = len(text.encode("utf-8")) - n  # 2 per CJK character, 1 per accented Latin letter
    wide = extra // 2
    return (n - wide + 3) // 4 + wide


class Histogram:
    def __init__(self) -> None:
        self.counts = [0] * len(TOKEN_EDGES)
        self.total = 0
        self.maximum = 0
        self.n = 0

    def add(self, value: int) -> None:
        index = len(TOKEN_EDGES) - 1
        for i in range(1, len(TOKEN_EDGES)):
            if value < TOKEN_EDGES[i]:
                index = i - 1
                break
        self.counts[index] += 1
        self.total += value
        self.n += 1
        self.maximum = max(self.maximum, value)

    def as_dict(self) -> dict[str, Any]:
        bins = [
            {
                "min": TOKEN_EDGES[i],
                "max": TOKEN_EDGES[i + 1] if i + 1 < len(TOKEN_EDGES) else None,
                "count": c,
            }
            for i, c in enumerate(self.counts)
        ]
        return {
            "total": self.total,
            "mean": round(self.total / self.n, 2) if self.n else 0.0,
            "max": self.maximum,
            "histogram": bins,
        }


class StatsAccumulator:
    """Counts for one version: rows, characters, tokens, turns, roles, duplicates, empty fields."""

    def __init__(self) -> None:
        self.rows = 0
        self.characters = 0
        self.tokens = Histogram()
        self.turns: Counter[int] = Counter()
        self.roles: Counter[str] = Counter()
        self.empty: Counter[str] = Counter()
        self.hashes = array("Q")
        self.splits: Counter[str] = Counter()
        self.subjects: Counter[str] = Counter()  # multiple-choice questions per subject

    def add(self, example: dict[str, Any], content_hash: int) -> None:
        self.rows += 1
        text = example_text(example)
        self.characters += len(text)
        self.tokens.add(approx_tokens(text))
        prompt, response = example.get("prompt", []), example.get("response", [])
        self.turns[len(prompt) + len(response)] += 1
        if example.get("system"):
            self.roles["system"] += 1
        for turn in prompt:
            self.roles[turn["role"]] += 1
            if not turn["content"].strip():
                self.empty[f"prompt.{turn['role']}"] += 1
        for turn in response:
            self.roles[turn["role"]] += 1
            if not turn["content"].strip():
                self.empty["response"] += 1
        self.hashes.append(content_hash)
        if "split" in example:
            self.splits[example["split"]] += 1
        question = example.get("choice")
        if isinstance(question, dict) and question.get("subject"):
            self.subjects[str(question["subject"])] += 1

    def as_dict(self, *, kind: str) -> dict[str, Any]:
        duplicates, groups = _duplicates(self.hashes)
        tokens = self.tokens.as_dict()
        tokens.update({"approximate": True, "tokenizer": None})
        result: dict[str, Any] = {
            "rows": self.rows,
            "characters": self.characters,
            "tokens": tokens,
            "turns": {str(k): v for k, v in sorted(self.turns.items())},
            "roles": dict(self.roles),
            "duplicates": {"rows": duplicates, "groups": groups},
            "empty_fields": dict(self.empty),
        }
        if kind == "text":
            result["turns"] = {}
        if self.splits:
            result["splits"] = dict(self.splits)
        if self.subjects:
            result["subjects"] = dict(self.subjects.most_common(100))
        return result


def _duplicates(hashes: array[int]) -> tuple[int, int]:
    """(rows that repeat an earlier row, distinct rows that occur more than once)."""
    if not hashes:
        return 0, 0
    import numpy as np

    values = np.frombuffer(hashes, dtype=np.uint64)
    _unique, counts = np.unique(values, return_counts=True)
    repeated = counts[counts > 1]
    return int((repeated - 1).sum()), int(repeated.size)


def read_examples(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as f:
        for line in f:
            yield json.loads(line)


def tokenizer_stats(examples: Iterable[dict[str, Any]], tokenizer_file: Path, name: str) -> dict[str, Any]:
    """Exact token-length histogram with a `tokenizers` tokenizer (no torch, no transformers)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    histogram = Histogram()
    batch: list[str] = []

    def flush() -> None:
        for encoding in tokenizer.encode_batch(batch, add_special_tokens=False):
            histogram.add(len(encoding.ids))
        batch.clear()

    for example in examples:
        batch.append(example_text(example))
        if len(batch) >= 512:
            flush()
    if batch:
        flush()
    result = histogram.as_dict()
    result.update({"approximate": False, "tokenizer": name})
    return result
