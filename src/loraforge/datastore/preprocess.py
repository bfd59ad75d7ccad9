"""Preprocessing of normalized examples (seed 000 option names), streamed row by row.

Order: clean_text → mask_pii → remove_stopwords → drop_empty → min/max length → dedupe → tokenize
→ split. Every removed row is counted under its reason in the report.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from loraforge.datastore.stats import approx_tokens, example_text
from loraforge.datastore.text_clean import clean

_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_CN_ID = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){13,19}(?!\d)")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+?\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{3,4}[ .-]?\d{3,4}(?:[ .-]?\d{2,4})?(?![\w])"
)
_EN_WORD = re.compile(r"[A-Za-z']+")
_NORMALIZE_PUNCT = re.compile(r"[\W_]+", re.U)


@dataclass
class Options:
    clean_text: bool = False
    remove_stopwords: list[str] = field(default_factory=list)  # languages: en, zh
    tokenize: bool = False
    tokenizer: str | None = None
    dedupe: str | None = None  # exact | normalized
    min_length: int | None = None
    max_length: int | None = None
    length_unit: str = "chars"  # chars | tokens
    drop_empty: bool = False
    mask_pii: bool = False
    val_ratio: float | None = None
    seed: int = 42


@lru_cache(maxsize=4)
def stopwords(language: str) -> frozenset[str]:
    text = (
        resources.files("loraforge.datastore")
        .joinpath("assets", f"stopwords_{language}.txt")
        .read_text("utf-8")
    )
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


@lru_cache(maxsize=1)
def _zh_pattern() -> re.Pattern[str]:
    words = sorted(stopwords("zh"), key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in words))


def mask(text: str) -> str:
    text = _EMAIL.sub("[EMAIL]", text)
    text = _CN_ID.sub("[ID]", text)
    text = _SSN.sub("[ID]", text)
    text = _CARD.sub(lambda m: "[ID]" if sum(c.isdigit() for c in m.group()) >= 13 else m.group(), text)
    return _PHONE.sub(lambda m: "[PHONE]" if sum(c.isdigit() for c in m.group()) >= 7 else m.group(), text)


def drop_stopwords(text: str, languages: list[str]) -> str:
    if "en" in languages:
        words = stopwords("en")
        text = _EN_WORD.sub(lambda m: "" if m.group().lower() in words else m.group(), text)
        text = _SPACES.sub(" ", text).strip()
    if "zh" in languages:
        text = _zh_pattern().sub("", text)
    return text


def _map_text(example: dict[str, Any], fn: Any) -> dict[str, Any]:
    out = dict(example)
    out["system"] = fn(example.get("system") or "") if example.get("system") else example.get("system", "")
    out["prompt"] = [{**t, "content": fn(t["content"])} for t in example.get("prompt", [])]
    out["response"] = [{**t, "content": fn(t["content"])} for t in example.get("response", [])]
    return out


def _is_empty(example: dict[str, Any], kind: str) -> bool:
    turns = example.get("prompt", []) + example.get("response", [])
    if not turns or any(not t["content"].strip() for t in turns):
        return True
    return kind != "text" and not example.get("response")


def _normalized_key(example: dict[str, Any]) -> bytes:
    text = _NORMALIZE_PUNCT.sub(" ", example_text(example).casefold()).strip()
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _exact_key(example: dict[str, Any]) -> bytes:
    body = {k: v for k, v in example.items() if k not in ("row", "split")}
    return hashlib.blake2b(
        json.dumps(body, sort_keys=True, ensure_ascii=False).encode(), digest_size=16
    ).digest()


class Processor:
    """Applies `Options` to examples one at a time; `removed` counts rows dropped per reason."""

    def __init__(self, options: Options, *, kind: str, tokenizer: Any = None) -> None:
        self.options = options
        self.kind = kind
        self.tokenizer = tokenizer
        self.removed: Counter[str] = Counter()
        self.seen: set[bytes] = set()
        self.tokens = 0

    def length(self, example: dict[str, Any]) -> int:
        text = example_text(example)
        if self.options.length_unit != "tokens":
            return len(text)
        if self.tokenizer is not None:
            return len(self.tokenizer.encode(text, add_special_tokens=False).ids)
        return approx_tokens(text)

    def apply(
        self, example: dict[str, Any], *, tokenize: bool = True
    ) -> tuple[dict[str, Any] | None, str | None]:
        """(processed example, None) or (None, reason it was removed). `tokenize=False` skips only
        the token ids (an estimate needs the verdict, not the ids)."""
        o = self.options
        if o.clean_text:
            example = _map_text(example, clean)
        if o.mask_pii:
            example = _map_text(example, mask)
        if o.remove_stopwords:
            example = _map_text(example, lambda t: drop_stopwords(t, o.remove_stopwords))
        if o.drop_empty and _is_empty(example, self.kind):
            return None, "empty"
        if o.min_length is not None or o.max_length is not None:
            n = self.length(example)
            if o.min_length is not None and n < o.min_length:
                return None, "too_short"
            if o.max_length is not None and n > o.max_length:
                return None, "too_long"
        if o.dedupe:
            keys = [("duplicate_exact", _exact_key(example))]
            if o.dedupe == "normalized":
                keys.append(("duplicate_normalized", _normalized_key(example)))
            for reason, key in keys:
                if key in self.seen:
                    return None, reason
            for _reason, key in keys:
                self.seen.add(key)
        if self.tokenizer is not None and o.tokenize and tokenize:
            ids = [
                e.ids
                for e in self.tokenizer.encode_batch(
                    [t["content"] for t in example["prompt"] + example["response"]], add_special_tokens=False
                )
            ]
            example = {**example, "token_ids": ids}
            self.tokens += sum(len(i) for i in ids)
        return example, None

    def run(self, examples: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for example in examples:
            out, reason = self.apply(example)
            if out is None:
                self.removed[reason or "removed"] += 1
                continue
            yield out


def validation_rows(total: int, val_ratio: float) -> int:
    """How many of `total` rows `assign_splits` marks as validation: round(total * val_ratio), at
    least one when there are two rows or more."""
    return min(total, max(1 if val_ratio > 0 and total > 1 else 0, round(total * val_ratio)))


def assign_splits(
    examples: Iterable[dict[str, Any]], *, total: int, val_ratio: float, seed: int
) -> Iterator[dict[str, Any]]:
    """Mark exactly `validation_rows(total, val_ratio)` rows (chosen with `seed`) as validation."""
    k = validation_rows(total, val_ratio)
    # Not security-relevant: a reproducible split for a given seed.
    chosen = set(random.Random(seed).sample(range(total), k)) if k else set()  # noqa: S311
    for i, example in enumerate(examples):
        yield {**example, "split": "validation" if i in chosen else "train"}


def read(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as f:
        for line in f:
            yield json.loads(line)


@dataclass(frozen=True)
class Estimate:
    """What a run over every row would report, from the filters run over the first `sample_rows`."""

    rows_in: int
    rows_out: int
    removed: dict[str, int]
    sample_rows: int
    extrapolated: bool
    splits: dict[str, int] | None

    def report(self) -> dict[str, Any]:
        """In the terms of the real run's report."""
        report: dict[str, Any] = {
            "original_rows": self.rows_in,
            "processed_rows": self.rows_out,
            "removed": self.removed,
        }
        if self.splits is not None:
            report["splits"] = self.splits
        return report


def estimate(removed: Counter[str], *, sample_rows: int, rows_in: int, val_ratio: float | None) -> Estimate:
    """Scale the removals counted over the first `sample_rows` rows up to `rows_in` rows (exact when
    the sample is every row). Duplicates scale linearly too: an estimate, as the response says."""
    rows_in = max(rows_in, sample_rows)
    extrapolated = sample_rows < rows_in
    scale = rows_in / sample_rows if sample_rows else 0.0
    scaled = {reason: round(count * scale) for reason, count in removed.items() if count}
    rows_out = max(0, rows_in - sum(scaled.values()))
    splits = None
    if val_ratio:
        validation = validation_rows(rows_out, val_ratio)
        splits = {k: v for k, v in (("train", rows_out - validation), ("validation", validation)) if v}
    return Estimate(rows_in, rows_out, scaled, sample_rows, extrapolated, splits)
