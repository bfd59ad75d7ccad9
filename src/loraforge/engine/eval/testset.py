"""The test set: rows read and normalised exactly as training reads them, or multiple-choice questions.

Generation and perplexity rows go through the engine's own readers and row converter
(`engine/data`: alpaca, sharegpt, OpenAI messages, text; names from dataset_info.json or file
paths), so a test set that trains also evaluates. Multiple-choice files (CSV/JSON/JSONL) hold one
question per row: `question`, the options as columns `A`, `B`, ... or as a list `options` /
`choices`, `answer` (a letter, a 0-based index, or the text of an option) and optionally `subject`.

Torch-free.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loraforge.engine.data.formats import Example
from loraforge.engine.data.prepare import load_examples
from loraforge.engine.data.readers import read_rows
from loraforge.engine.data.registry import DatasetAttr, load_dataset_info, resolve_dataset
from loraforge.engine.data.stats import DataError, DatasetStats
from loraforge.engine.eval.choice import LETTERS, Question, check_question

if TYPE_CHECKING:
    from loraforge.engine.eval.spec import EvalSpec


def dataset_attrs(spec: EvalSpec, names: list[str], base_dir: Path | None = None) -> list[DatasetAttr]:
    """Each test-set name resolved as training resolves `dataset` (DatasetNotFoundError if neither)."""
    dataset_dir = spec.dataset_dir_path(base_dir)
    info = load_dataset_info(dataset_dir)
    return [
        resolve_dataset(name, dataset_dir, info=info, formatting=spec.formatting, columns=spec.columns)
        for name in names
    ]


def load_generation_set(
    spec: EvalSpec, base_dir: Path | None = None
) -> tuple[list[Example], list[DatasetStats]]:
    """Examples with an answer (the reference), in file order; rows that do not convert are counted."""
    attrs = dataset_attrs(spec, spec.eval_dataset, base_dir)
    examples, stats = load_examples(attrs, max_samples=spec.max_samples)
    kept = [ex for ex in examples if ex["response"]]
    if not kept:
        found = ", ".join(f"{s.name}: {s.rows_read} rows, {s.rows_kept} usable" for s in stats)
        raise DataError(f"eval_dataset has no rows with a reference answer ({found})")
    return kept, stats


# ---- multiple choice -----------------------------------------------------------------------------
class QuestionError(ValueError):
    """A multiple-choice row that cannot be read; the message names the row and the column."""


def parse_question(row: dict[str, Any], where: str) -> Question:
    text = row.get("question")
    if not isinstance(text, str) or not text.strip():
        raise QuestionError(f"{where}: `question` is missing or empty")
    options = _options(row, where)
    question = Question(
        question=text,
        options=options,
        answer=_answer(row.get("answer"), options, where),
        subject=str(row["subject"]).strip() or None if row.get("subject") not in (None, "") else None,
    )
    try:
        check_question(question)
    except ValueError as exc:
        raise QuestionError(f"{where}: {exc}") from None
    return question


def _options(row: dict[str, Any], where: str) -> tuple[str, ...]:
    for key in ("options", "choices"):
        value = row.get(key)
        if isinstance(value, list):
            return tuple(str(v) for v in value)
    columns: list[str] = []
    for letter in LETTERS:  # A, B, C, ... up to the first missing letter
        value = row.get(letter)
        if value is None or value == "":
            break
        columns.append(str(value))
    if not columns:
        raise QuestionError(f"{where}: no options (columns A, B, ... or a list `options` / `choices`)")
    return tuple(columns)


def _answer(value: Any, options: tuple[str, ...], where: str) -> str:
    if isinstance(value, bool) or value is None:
        raise QuestionError(f"{where}: `answer` is missing")
    if isinstance(value, int):  # Hugging Face's MMLU: a 0-based index into `choices`
        if 0 <= value < len(options):
            return LETTERS[value]
        raise QuestionError(f"{where}: answer index {value} is not one of 0..{len(options) - 1}")
    text = str(value).strip()
    if len(text) == 1 and text.upper() in LETTERS:
        return text.upper()
    if text in options:
        return LETTERS[options.index(text)]
    raise QuestionError(f"{where}: answer {text!r} is neither an option letter nor an option's text")


def read_questions(path: Path, name: str, max_samples: int | None = None) -> list[Question]:
    rows = read_rows(path)
    if max_samples is not None:
        rows = rows[:max_samples]
    if not rows:
        raise DataError(f"{name}: no questions")
    return [parse_question(row, f"{name}, row {i + 1}") for i, row in enumerate(rows)]


@dataclass(frozen=True)
class ChoiceItem:
    """One scored question and the solved examples shown before it."""

    index: int
    question: Question
    shots: tuple[Question, ...]


def choice_items(spec: EvalSpec, base_dir: Path | None = None) -> tuple[list[ChoiceItem], int]:
    """The questions to score with their shots, and how many test rows became shots instead.

    Shots are the first `n_shot` questions of the same subject: from `dev_dataset` when given,
    else from the test set itself, and then those rows are not scored (a question must not be
    answered with itself shown solved).
    """
    questions: list[Question] = []
    for attr in dataset_attrs(spec, spec.eval_dataset, base_dir):
        questions += read_questions(attr.path, attr.name, spec.max_samples)
    k = spec.n_shot
    if k == 0:
        return [ChoiceItem(i, q, ()) for i, q in enumerate(questions)], 0
    if spec.dev_dataset:
        (dev_attr,) = dataset_attrs(spec, [spec.dev_dataset], base_dir)
        pool = _by_subject(read_questions(dev_attr.path, dev_attr.name))
        return [ChoiceItem(i, q, tuple(pool.get(q.subject, [])[:k])) for i, q in enumerate(questions)], 0
    pool = _by_subject(questions)
    shot_ids = {id(q) for group in pool.values() for q in group[:k]}
    items = [
        ChoiceItem(i, q, tuple(pool[q.subject][:k])) for i, q in enumerate(questions) if id(q) not in shot_ids
    ]
    if not items:
        raise DataError(
            f"n_shot: {k} uses every question of each subject as a shot; nothing is left to score"
        )
    return items, len(shot_ids)


def _by_subject(questions: list[Question]) -> dict[str | None, list[Question]]:
    groups: dict[str | None, list[Question]] = defaultdict(list)
    for q in questions:
        groups[q.subject].append(q)
    return groups
