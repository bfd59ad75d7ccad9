"""Multiple-choice evaluation (MMLU / C-Eval style): the prompt, the pick, the accuracy.

A question is answered by the option letter whose token the model gives the highest logit right
after the prompt: no generation, no parsing, one forward pass per question. The prompt follows the
MMLU layout, with k solved examples ("shots") first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Question:
    question: str
    options: tuple[str, ...]
    answer: str  # a letter
    subject: str | None = None


def check_question(question: Question) -> None:
    """ValueError naming what is wrong: too few or too many options, an answer that is no option."""
    count = len(question.options)
    if not 2 <= count <= len(LETTERS):
        raise ValueError(f"a question needs 2 to {len(LETTERS)} options, this one has {count}")
    letters = LETTERS[: len(question.options)]
    if question.answer not in letters:
        raise ValueError(f"answer {question.answer!r} is not one of the options {', '.join(letters)}")


def format_question(question: Question, *, with_answer: bool) -> str:
    lines = [question.question.strip()]
    lines += [f"{LETTERS[i]}. {option.strip()}" for i, option in enumerate(question.options)]
    lines.append(f"Answer: {question.answer}" if with_answer else "Answer:")
    return "\n".join(lines)


def build_prompt(question: Question, shots: Sequence[Question] = ()) -> str:
    """The k-shot prompt: a header naming the subject, the solved shots, then the open question."""
    subject = (question.subject or "").replace("_", " ").strip()
    header = (
        f"The following are multiple choice questions (with answers) about {subject}."
        if subject
        else ("The following are multiple choice questions (with answers).")
    )
    blocks = [header] + [format_question(shot, with_answer=True) for shot in shots]
    blocks.append(format_question(question, with_answer=False))
    return "\n\n".join(blocks)


def pick(letter_logits: Mapping[str, float]) -> str:
    """The letter with the highest logit (the first one on a tie, so the pick is deterministic)."""
    if not letter_logits:
        raise ValueError("no option logits")
    return max(sorted(letter_logits), key=lambda letter: letter_logits[letter])


@dataclass(frozen=True)
class Accuracy:
    overall: float
    count: int
    by_subject: dict[str, float]


def accuracy(results: Sequence[tuple[str | None, bool]]) -> Accuracy:
    """Overall and per-subject accuracy (0–100) from (subject, correct) pairs."""
    per: dict[str, list[bool]] = defaultdict(list)
    for subject, correct in results:
        if subject:
            per[subject].append(correct)
    overall = 100.0 * sum(correct for _, correct in results) / len(results) if results else 0.0
    by_subject = {name: 100.0 * sum(values) / len(values) for name, values in sorted(per.items())}
    return Accuracy(overall=round(overall, 4), count=len(results), by_subject=by_subject)
