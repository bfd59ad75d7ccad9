"""Multiple-choice questions (MMLU / C-Eval / CMMLU style): which columns hold them, one row converted,
and the question file an evaluation reads.

A row is a question when it has a question column (`question`, `input`, `问题`, ...), at least two
option columns `A`, `B`, ... (or one list column `options` / `choices`), and an answer column (a
letter, a 0-based index as in Hugging Face's MMLU, or the text of an option); `subject` / `category`
is optional. Column names match without regard to case (CMMLU writes `Question` and `Answer`).
Rows with the keys of a training format (instruction/output, messages, chosen/rejected) are never
taken for questions, so alpaca files with an `input` column stay alpaca.

The engine's own question rules (`engine/eval/choice.py`: letters A–J, 2–10 options, the prompt
layout) decide what is valid, so a version that ingests is a version the multiple_choice metric reads.
Torch-free and DB-free.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loraforge.engine.data.formats import RowError
from loraforge.engine.eval.choice import LETTERS, Question, check_question, format_question

FORMAT = "multiple_choice"
QUESTION_KEYS = ("question", "input", "问题", "题目", "stem")
ANSWER_KEYS = ("answer", "answerkey", "答案", "correct_answer", "target")
LIST_KEYS = ("options", "choices", "选项")
SUBJECT_KEYS = ("subject", "category", "科目", "学科", "类别")
# Keys of the training formats: a row holding one of these is theirs, whatever else it has.
_TRAINING_KEYS = frozenset(
    ("instruction", "output", "messages", "conversations", "conversation", "chosen", "rejected")
)


def _find(keys: dict[str, str], names: tuple[str, ...]) -> str | None:
    """The row's own spelling of the first of `names` it has (compared case-folded)."""
    return next((keys[name] for name in names if name in keys), None)


def _as_list(value: Any) -> list[Any] | None:
    """A list, or a CSV cell holding a JSON array (how a list column survives a CSV export)."""
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, list) else None
    return None


def columns_of(row: dict[str, Any]) -> dict[str, str] | None:
    """The column mapping (`question`, `answer`, `options` or `A`, `B`, ..., `subject`) when `row`
    looks like a multiple-choice question, else None."""
    if _TRAINING_KEYS.intersection(row):
        return None
    keys = {str(k).casefold(): str(k) for k in row}
    question, answer = _find(keys, QUESTION_KEYS), _find(keys, ANSWER_KEYS)
    if question is None or answer is None:
        return None
    mapping = {"question": question, "answer": answer}
    listed = next((keys[k] for k in LIST_KEYS if k in keys and _as_list(row[keys[k]]) is not None), None)
    if listed is not None:
        mapping["options"] = listed
    else:
        letters = [keys[c.casefold()] for c in _leading_letters(keys)]
        if len(letters) < 2:
            return None
        mapping.update({LETTERS[i]: column for i, column in enumerate(letters)})
    subject = _find(keys, SUBJECT_KEYS)
    if subject is not None:
        mapping["subject"] = subject
    return mapping


def _leading_letters(keys: dict[str, str]) -> list[str]:
    found: list[str] = []
    for letter in LETTERS:  # A, B, C, ... up to the first letter without a column
        if letter.casefold() not in keys:
            break
        found.append(letter)
    return found


def check_mapping(columns: dict[str, str]) -> str | None:
    """What a user-given multiple_choice mapping lacks, or None when it is usable."""
    missing = [key for key in ("question", "answer") if not columns.get(key)]
    if missing:
        return f"a multiple_choice mapping needs columns.{' and columns.'.join(missing)}"
    if not columns.get("options") and not (columns.get("A") and columns.get("B")):
        return "a multiple_choice mapping needs columns.options (a list column) or columns.A and columns.B"
    return None


def _options(row: dict[str, Any], columns: dict[str, str]) -> list[str]:
    if columns.get("options"):
        listed = columns["options"]
        value = _as_list(row.get(listed))
        if value is None:
            raise RowError(listed, "must be a list of options (a JSON array in a CSV cell)")
        options = [_text(v) for v in value]
        if "" in options:
            raise RowError(listed, f"option {options.index('') + 1} is empty")
        return options
    values: list[tuple[str, str]] = []
    for letter in LETTERS:
        column = columns.get(letter)
        if column is None:
            break
        values.append((column, _text(row.get(column))))
    while values and not values[-1][1]:  # a 3-option question in a 4-column file
        values.pop()
    for column, text in values:
        if not text:
            raise RowError(column, "empty option before a filled one")
    return [text for _column, text in values]


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _answer(value: Any, options: list[str], column: str) -> str:
    """The answer as a letter: a letter (`B`, `(b)`, `B.`), a 0-based index, or an option's text."""
    if value is None or value == "" or isinstance(value, bool):
        raise RowError(column, "the answer is missing")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    letter = text.strip("().: ").upper()
    if len(letter) == 1 and letter in LETTERS:
        if letter not in LETTERS[: len(options)]:
            raise RowError(
                column, f"answer {text!r} is not one of the options {', '.join(LETTERS[: len(options)])}"
            )
        return letter
    if isinstance(value, int) or text.isdigit():
        index = int(text)
        if 0 <= index < len(options):
            return LETTERS[index]
        raise RowError(column, f"answer index {index} is not one of 0..{len(options) - 1} (0-based)")
    if text in options:
        return LETTERS[options.index(text)]
    raise RowError(
        column, f"answer {text[:80]!r} is neither an option letter, a 0-based index nor an option's text"
    )


def convert(row: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    """One source row as a normalized example (RowError names the column at fault).

    `prompt`/`response` hold the question as the engine shows it and the answer letter, so previews,
    statistics and generation metrics (exact_match on the letter) work as for any dataset; `choice`
    keeps the question itself for the multiple_choice metric.
    """
    question_column = columns.get("question", "question")
    question = _text(row.get(question_column))
    if not question:
        raise RowError(question_column, "the question is missing or empty")
    options = _options(row, columns)
    if len(options) < 2:
        raise RowError(
            columns.get("options") or columns.get("A") or "A", "a question needs at least 2 options"
        )
    answer_column = columns.get("answer", "answer")
    answer = _answer(row.get(answer_column), options, answer_column)
    subject = _text(row.get(columns["subject"])) or None if columns.get("subject") else None
    parsed = Question(question=question, options=tuple(options), answer=answer, subject=subject)
    try:
        check_question(parsed)
    except ValueError as exc:
        raise RowError(columns.get("options") or "A", str(exc)) from None
    return {
        "prompt": [{"role": "user", "content": format_question(parsed, with_answer=False)}],
        "response": [{"role": "assistant", "content": answer}],
        "system": "",
        "tools": "",
        "label": None,
        "choice": {"question": question, "options": options, "answer": answer, "subject": subject},
    }


def question_rows(normalized: Path, *, split: str | None = None) -> Iterator[dict[str, Any]]:
    """The rows of a multiple_choice version's normalized.jsonl as the engine's question rows
    (`question`, `options`, `answer` letter, `subject`); `split` keeps only rows of that split
    ("train" / "validation", set by a preprocess with a validation ratio)."""
    with normalized.open(encoding="utf-8") as src:
        for line in src:
            if not line.strip():
                continue
            example = json.loads(line)
            if split is not None and example.get("split", "train") != split:
                continue
            choice = example.get("choice")
            if isinstance(choice, dict):
                yield {k: choice.get(k) for k in ("question", "options", "answer", "subject")}


def write_question_file(normalized: Path, out: Path, *, split: str | None = None) -> int:
    """Write the question rows (JSONL) that `engine/eval/testset.read_questions` reads; returns the count."""
    count = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as dst:
        for row in question_rows(normalized, split=split):
            dst.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count
