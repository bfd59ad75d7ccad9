"""An LLM as judge: the prompt it is given and the reading of what it answers.

Single mode: the judge scores one answer against the reference from 1 to 10 with a reason. Judges
do not follow formats faithfully ("Score: 7", "**7/10**", "[[7]]", "I'd give it a 7."), so the
score is read from the most explicit form found; an answer with no score in range is counted as
unparseable, never guessed.

Pairwise mode: the judge says which of two answers is better. Judges favour a position, so each pair
is judged twice with the answers swapped; a model wins only when both orders agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from string import Formatter
from typing import Literal

SCORE_PROMPT = (
    "You are a strict grader. Compare the answer with the reference answer to the question and rate "
    "the answer's correctness and helpfulness from 1 (wrong) to 10 (as good as the reference).\n\n"
    "Question:\n{question}\n\nReference answer:\n{reference}\n\nAnswer to grade:\n{answer}\n\n"
    'Reply with one line "Score: <1-10>" and then one sentence giving the reason.'
)
PAIRWISE_PROMPT = (
    "You are a strict grader. Which answer to the question is better, given the reference answer?\n\n"
    "Question:\n{question}\n\nReference answer:\n{reference}\n\nAnswer A:\n{answer_a}\n\n"
    'Answer B:\n{answer_b}\n\nReply with one line "Verdict: A", "Verdict: B" or "Verdict: tie", '
    "then one sentence giving the reason."
)
SCORE_FIELDS = frozenset({"question", "reference", "answer"})
PAIRWISE_FIELDS = frozenset({"question", "reference", "answer_a", "answer_b"})

# Most explicit first: "[[7]]", "Score: 7", "7/10", then a bare number on a line of its own.
_SCORE_FORMS = (
    re.compile(r"\[\[\s*(\d{1,2}(?:\.\d+)?)\s*\]\]"),
    re.compile(
        r"(?:score|rating|grade|评分|分数|得分)\**\s*[:=：]?\s*\**\s*(\d{1,2}(?:\.\d+)?)", re.IGNORECASE
    ),
    re.compile(r"\b(\d{1,2}(?:\.\d+)?)\s*/\s*10\b"),
    re.compile(r"^\W*(\d{1,2}(?:\.\d+)?)\W*$", re.MULTILINE),
)
_VERDICT = re.compile(r"verdict\**\s*[:=：]?\s*\**\s*\[*\s*(a|b|tie)\b", re.IGNORECASE)
_BARE_VERDICT = re.compile(r"^\W*(a|b|tie)\W*$", re.IGNORECASE | re.MULTILINE)

Verdict = Literal["A", "B", "tie"]
Outcome = Literal["win", "tie", "loss"]


def check_template(template: str, fields: frozenset[str]) -> None:
    """ValueError when a template names an unknown field or misses one the judge needs."""
    try:
        named = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"the template does not parse: {exc}") from None
    unknown = named - fields
    if unknown:
        raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; use {sorted(fields)}")
    missing = fields - named
    if missing:
        raise ValueError(f"the template must contain {', '.join('{' + f + '}' for f in sorted(missing))}")


def parse_score(text: str, *, low: int = 1, high: int = 10) -> float | None:
    """The score the judge gave, or None when no score in [low, high] can be read."""
    for form in _SCORE_FORMS:
        for match in form.finditer(text):
            value = float(match.group(1))
            if low <= value <= high:
                return value
    return None


def parse_verdict(text: str) -> Verdict | None:
    match = _VERDICT.search(text) or _BARE_VERDICT.search(text)
    if match is None:
        return None
    word = match.group(1).lower()
    return "tie" if word == "tie" else ("A" if word == "a" else "B")


def pairwise_outcome(first_is_a: Verdict | None, first_is_b: Verdict | None) -> Outcome | None:
    """The first model's outcome from two verdicts: once shown as A, once (swapped) as B.

    Both orders must agree for a win or a loss; anything else (position bias) is a tie. None when
    either verdict was unparseable.
    """
    if first_is_a is None or first_is_b is None:
        return None
    as_a = {"A": 1, "B": -1, "tie": 0}[first_is_a]
    as_b = {"B": 1, "A": -1, "tie": 0}[first_is_b]
    total = as_a + as_b
    if total == 2:
        return "win"
    return "loss" if total == -2 else "tie"


@dataclass(frozen=True)
class PairwiseRates:
    win: float
    tie: float
    loss: float
    unparseable: int


def pairwise_rates(outcomes: Sequence[Outcome | None]) -> PairwiseRates:
    """Win/tie/loss rates (0–100) over the parseable pairs, and how many were not."""
    parsed = [outcome for outcome in outcomes if outcome is not None]
    n = len(parsed) or 1
    return PairwiseRates(
        win=round(100.0 * parsed.count("win") / n, 4),
        tie=round(100.0 * parsed.count("tie") / n, 4),
        loss=round(100.0 * parsed.count("loss") / n, 4),
        unparseable=len(outcomes) - len(parsed),
    )
