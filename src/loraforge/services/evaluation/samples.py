"""Per-sample results of an evaluation's runs, merged by sample index, for the sample browser and reports.

Each run's engine writes one JSON line per sample as it goes (`samples.jsonl` for generated answers,
`perplexity.jsonl`, `choices.jsonl`; see `engine/eval/runner.py`) into its job's run directory. A run
may still be writing: the last line can be torn (no newline yet) and is ignored; a missing file means
no answers yet. Parsing a 10 000-sample file costs real time and memory, so a run's parsed records
are cached, keyed by each file's (path, size, mtime): a growing file is read again, an unchanged one
never. Everything here reads; nothing writes into a run directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.evaluation.compare import lower_is_better

SAMPLES_FILE = "samples.jsonl"
PERPLEXITY_FILE = "perplexity.jsonl"
CHOICES_FILE = "choices.jsonl"
# The per-sample score keys a sample can carry (corpus scores — sacrebleu, chrf — have none).
SAMPLE_METRIC_KEYS = (
    "bleu-4", "rouge-1", "rouge-2", "rouge-l", "exact_match", "contains", "regex", "valid_json",
    "perplexity", "loss", "multiple_choice", "judge_score",
)  # fmt: skip
# The evaluation's metric names -> the per-sample key the browser sorts by when none is asked for.
_DEFAULT_KEY = {
    "bleu": "bleu-4", "rouge": "rouge-l", "exact_match": "exact_match", "contains": "contains",
    "regex": "regex", "valid_json": "valid_json", "perplexity": "perplexity",
    "multiple_choice": "multiple_choice", "judge": "judge_score",
}  # fmt: skip
_MAX_EXP = 700.0  # math.exp overflows past ~709; such a perplexity is not a number worth showing

Sort = Literal["index", "regression", "improvement"]


@dataclass(frozen=True, slots=True)
class Answer:
    """One run's result for one sample (any of the three files may have contributed)."""

    prompt: str | None = None
    label: str | None = None
    predict: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    judge: dict[str, Any] | None = None
    latency_s: float | None = None
    completion_tokens: int | None = None
    error: str | None = None  # a provider model's request failed for this sample


@dataclass(frozen=True)
class RunSource:
    """A run whose samples are merged: `position` is its place in the merged view (0 = first)."""

    run_id: int
    position: int
    model: str
    files_dir: Path | None


# ---- reading one run (cached) ----------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _lines(path: Path) -> list[dict[str, Any]]:
    """The complete JSON-object lines with an integer `index`; a torn last line is left out."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return []
    records = []
    for line in data[: data.rfind(b"\n") + 1].splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and type(record.get("index")) is int:
            records.append(record)
    return records


def _from_sample(record: dict[str, Any]) -> Answer:
    raw = record.get("scores")
    scores = {k: v for k, v in ((k, _number(v)) for k, v in (raw or {}).items()) if v is not None}
    judge = record.get("judge")
    if isinstance(judge, dict):
        score = _number(judge.get("score"))
        judge = {
            "score": score,
            "reason": _text(judge.get("reason")) or "",
            "error": _text(judge.get("error")),
        }
        if score is not None:
            scores["judge_score"] = score
    else:
        judge = None
    tokens = record.get("completion_tokens")
    return Answer(
        prompt=_text(record.get("prompt")),
        label=_text(record.get("label")),
        predict=_text(record.get("predict")),
        scores=scores,
        judge=judge,
        latency_s=_number(record.get("latency_s")),
        completion_tokens=tokens if type(tokens) is int else None,
        error=_text(record.get("error")),
    )


def _with_perplexity(answer: Answer, record: dict[str, Any]) -> Answer:
    nll, tokens = _number(record.get("nll")), _number(record.get("tokens"))
    if nll is None or not tokens or tokens <= 0:
        return answer
    loss = nll / tokens
    scores = {**answer.scores, "loss": round(loss, 6)}
    if loss <= _MAX_EXP:
        scores["perplexity"] = round(math.exp(loss), 6)
    return dataclasses.replace(answer, scores=scores)


def _from_choice(record: dict[str, Any]) -> Answer:
    # A question has no rendered prompt on file; its subject is what a reader can search for.
    subject = _text(record.get("subject"))
    return Answer(
        prompt=f"[{subject}]" if subject else None,
        label=_text(record.get("answer")),
        predict=_text(record.get("pick")),
        scores={"multiple_choice": 100.0 if record.get("correct") is True else 0.0},
    )


def _parse_run(files_dir: Path) -> dict[int, Answer]:
    answers = {r["index"]: _from_sample(r) for r in _lines(files_dir / SAMPLES_FILE)}
    for record in _lines(files_dir / PERPLEXITY_FILE):
        answers[record["index"]] = _with_perplexity(answers.get(record["index"], Answer()), record)
    for record in _lines(files_dir / CHOICES_FILE):
        answers[record["index"]] = _from_choice(record)
    return answers


_CacheKey = tuple[str, tuple[tuple[int, int], ...]]
_CACHE_ENTRIES = 32
_CACHE_BYTES = 256 * 1024 * 1024  # summed file sizes; a run bigger than this is parsed, not kept
_cache: OrderedDict[_CacheKey, tuple[int, dict[int, Answer]]] = OrderedDict()
_cache_lock = threading.Lock()


def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, 0)
    return (stat.st_size, stat.st_mtime_ns)


def run_answers(files_dir: Path | None) -> dict[int, Answer]:
    """The run's answers by sample index, parsed once per version of its files (LRU)."""
    if files_dir is None:
        return {}
    stamps = tuple(_stamp(files_dir / name) for name in (SAMPLES_FILE, PERPLEXITY_FILE, CHOICES_FILE))
    if all(size < 0 for size, _ in stamps):
        return {}
    key = (str(files_dir), stamps)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit[1]
    answers = _parse_run(files_dir)
    size = sum(max(s, 0) for s, _ in stamps)
    if size <= _CACHE_BYTES:
        with _cache_lock:
            _cache[key] = (size, answers)
            while len(_cache) > _CACHE_ENTRIES or sum(s for s, _ in _cache.values()) > _CACHE_BYTES:
                _cache.popitem(last=False)
    return answers


# ---- merging, sorting, filtering -----------------------------------------------------------


def default_metric(metrics: Sequence[str]) -> str | None:
    """The per-sample key the browser sorts by for an evaluation of `metrics` (None: no such key)."""
    return next((_DEFAULT_KEY[m] for m in metrics if m in _DEFAULT_KEY), None)


def _answer_out(source: RunSource, answer: Answer | None) -> dict[str, Any]:
    answer = answer or Answer()
    out: dict[str, Any] = {
        "run_id": source.run_id,
        "position": source.position,
        "model": source.model,
        "predict": answer.predict,
        "scores": dict(answer.scores),
        "latency_s": answer.latency_s,
        "completion_tokens": answer.completion_tokens,
        "error": answer.error,
    }
    if answer.judge is not None:
        out["judge"] = dict(answer.judge)
    return out


def sample_item(
    index: int, sources: Sequence[RunSource], per_run: Sequence[dict[int, Answer]]
) -> dict[str, Any]:
    """One sample across runs: the prompt and label (from the first run holding them) and each answer;
    a run without an answer yet has `predict: null` and no scores."""
    answers = [run.get(index) for run in per_run]
    prompt = next((a.prompt for a in answers if a is not None and a.prompt is not None), "")
    label = next((a.label for a in answers if a is not None and a.label is not None), "")
    return {
        "index": index,
        "prompt": prompt,
        "label": label,
        "answers": [_answer_out(s, a) for s, a in zip(sources, answers, strict=True)],
    }


def merged_indices(per_run: Sequence[dict[int, Answer]]) -> list[int]:
    return sorted(set().union(*per_run)) if per_run else []


def _change(value: float | None, base: float | None, lower_better: bool) -> float | None:
    """How much better than the baseline (negative: a regression), whatever the metric's direction."""
    if value is None or base is None:
        return None
    return base - value if lower_better else value - base


def _matches(index: int, per_run: Sequence[dict[int, Answer]], needle: str) -> bool:
    for run in per_run:
        answer = run.get(index)
        if answer is None:
            continue
        for text in (answer.prompt, answer.label, answer.predict):
            if text and needle in text.casefold():
                return True
    return False


@dataclass(frozen=True)
class SampleQuery:
    sort: Sort = "index"
    metric: str | None = None
    baseline: int = 0  # a position among the sources
    min: float | None = None
    max: float | None = None
    q: str | None = None


def select_samples(
    sources: Sequence[RunSource], query: SampleQuery, *, offset: int, limit: int, default: str | None = None
) -> tuple[list[dict[str, Any]], int, str | None]:
    """The page of merged samples, the total after filtering, and the metric used (None: none)."""
    metric = query.metric or default
    if query.metric is not None and query.metric not in SAMPLE_METRIC_KEYS:
        raise InvalidInput(
            f"metric: {query.metric!r} has no per-sample score",
            fields=[FieldIssue("metric", f"use one of {', '.join(SAMPLE_METRIC_KEYS)}")],
        )
    if metric is None and (query.sort != "index" or query.min is not None or query.max is not None):
        raise InvalidInput(
            "metric: name the per-sample metric to sort or filter by",
            fields=[FieldIssue("metric", "this evaluation has no per-sample metric to default to")],
        )
    positions = [s.position for s in sources]
    if sources and query.baseline not in positions:
        raise InvalidInput(
            f"baseline: no run at position {query.baseline}",
            fields=[FieldIssue("baseline", f"use one of {', '.join(map(str, positions))}")],
        )
    if query.min is not None and query.max is not None and query.min > query.max:
        raise InvalidInput("min is above max", fields=[FieldIssue("min", "must not exceed max")])

    per_run = [run_answers(s.files_dir) for s in sources]
    indices = merged_indices(per_run)
    base_at = positions.index(query.baseline) if sources else 0
    others = [i for i in range(len(sources)) if i != base_at] or [base_at]
    if query.q:
        needle = query.q.casefold()
        indices = [i for i in indices if _matches(i, per_run, needle)]
    if metric is not None and (query.min is not None or query.max is not None):
        lo, hi = query.min, query.max

        def in_range(index: int) -> bool:
            for k in others:
                answer = per_run[k].get(index)
                value = answer.scores.get(metric) if answer else None
                if value is not None and (lo is None or value >= lo) and (hi is None or value <= hi):
                    return True
            return False

        indices = [i for i in indices if in_range(i)]
    if metric is not None and query.sort != "index":
        lower_better = lower_is_better(metric)

        def changes(index: int) -> list[float]:
            base = per_run[base_at].get(index)
            base_value = base.scores.get(metric) if base else None
            found = []
            for k in others:
                answer = per_run[k].get(index)
                change = _change(answer.scores.get(metric) if answer else None, base_value, lower_better)
                if change is not None:
                    found.append(change)
            return found

        # Worst regression first (or biggest improvement first); samples without a delta go last.
        keyed = []
        for index in indices:
            found = changes(index)
            if not found:
                keyed.append((1, 0.0, index))
            elif query.sort == "regression":
                keyed.append((0, min(found), index))
            else:
                keyed.append((0, -max(found), index))
        keyed.sort()
        indices = [index for _, _, index in keyed]
    page = [sample_item(i, sources, per_run) for i in indices[offset : offset + limit]]
    return page, len(indices), metric


def all_samples(sources: Sequence[RunSource]) -> tuple[list[int], list[dict[int, Answer]]]:
    """Every sample index across the runs and each run's answers (for the reports)."""
    per_run = [run_answers(s.files_dir) for s in sources]
    return merged_indices(per_run), per_run
