"""Comparing runs: their totals side by side, the best run per metric, and each run's delta vs a baseline.

Totals come from `EvaluationRun.results["metrics"]` (the run's eval_results.json, copied when its job
succeeded). They are flattened to one number per key: multiple choice contributes its accuracy (and
one `multiple_choice/<subject>` key per subject), perplexity its `loss` (the mean NLL) too. Lower is
better for perplexity, loss, latency and the judge's unparseable count; higher for everything else.
Runs compared across evaluations must have been scored on the same rows (dataset version and split),
or their numbers would not measure the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from loraforge.db.models import Dataset, DatasetVersion, Evaluation, EvaluationRun, User
from loraforge.errors import FieldIssue, InvalidInput, NotFound
from loraforge.services.evaluation.access import CODE, get_evaluation

Direction = Literal["higher", "lower"]
MIN_RUNS, MAX_RUNS = 2, 8
_LOWER = frozenset({"perplexity", "loss", "mean_nll", "judge_unparseable"})
# The order metrics are listed in (whatever order an engine wrote them): overlap, matching, likelihood,
# choice, judge; keys not named here (per-subject accuracy...) follow in the order first seen.
_ORDER = (
    "bleu-4", "rouge-1", "rouge-2", "rouge-l", "sacrebleu", "chrf", "exact_match", "contains", "regex",
    "valid_json", "perplexity", "loss", "multiple_choice", "judge_score", "judge_unparseable",
)  # fmt: skip
# Bookkeeping numbers among the totals: counts, not scores.
_NOT_SCORES = frozenset({"labelled_tokens", "questions", "shot_rows_not_scored"})


def lower_is_better(key: str) -> bool:
    return key in _LOWER or key.startswith("latency")


def direction(key: str) -> Direction:
    return "lower" if lower_is_better(key) else "higher"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None  # an empty set's perplexity is inf


def flat_metrics(results: dict[str, Any] | None) -> dict[str, float]:
    """A run's totals as {key: number}, in the order the engine wrote them."""
    raw = (results or {}).get("metrics")
    out: dict[str, float] = {}
    if not isinstance(raw, dict):
        return out
    for key, value in raw.items():
        if not isinstance(key, str) or key in _NOT_SCORES:
            continue
        if key == "multiple_choice" and isinstance(value, dict):
            accuracy = _number(value.get("accuracy"))
            if accuracy is not None:
                out[key] = accuracy
            subjects = value.get("by_subject")
            for subject, score in subjects.items() if isinstance(subjects, dict) else ():
                number = _number(score.get("accuracy") if isinstance(score, dict) else score)
                if number is not None:
                    out[f"multiple_choice/{subject}"] = number
        elif key == "mean_nll":
            number = _number(value)
            if number is not None and "loss" not in raw:
                out["loss"] = number
        else:
            number = _number(value)
            if number is not None:
                out[key] = number
    return out


def speed_of(results: dict[str, Any] | None) -> dict[str, float]:
    raw = (results or {}).get("speed")
    if not isinstance(raw, dict):
        return {}
    return {k: n for k, n in ((k, _number(v)) for k, v in raw.items() if isinstance(k, str)) if n is not None}


@dataclass(frozen=True)
class RunTotals:
    """One compared run: who it is and its flattened totals."""

    run_id: int
    evaluation_id: int
    model: str
    metrics: dict[str, float]
    speed: dict[str, float]


def rank(rows: Sequence[RunTotals], baseline: int) -> dict[str, Any]:
    """The metric keys (in `_ORDER`), their directions, the best run per key (first of the best wins a
    tie; no best where every run scores the same),
    and each row with its delta vs the `baseline` run id (None where either side lacks the key)."""
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row.metrics if k not in keys)
    keys.sort(key=lambda k: _ORDER.index(k) if k in _ORDER else len(_ORDER))  # stable: the rest keep order
    base = next((r for r in rows if r.run_id == baseline), None)
    best: dict[str, int] = {}
    for key in keys:
        scored = [(r.metrics[key], i) for i, r in enumerate(rows) if key in r.metrics]
        if len(scored) > 1 and len({v for v, _ in scored}) == 1:
            continue  # every run ties: none is the best
        if scored:
            pick = min(scored) if lower_is_better(key) else min(scored, key=lambda s: (-s[0], s[1]))
            best[key] = rows[pick[1]].run_id
    out_rows = []
    for row in rows:
        delta: dict[str, float | None] = {}
        for key in keys:
            value, ref = row.metrics.get(key), base.metrics.get(key) if base else None
            delta[key] = None if value is None or ref is None else round(value - ref, 6)
        out_rows.append(
            {"run_id": row.run_id, "evaluation_id": row.evaluation_id, "model": row.model,
             "metrics": dict(row.metrics), "speed": dict(row.speed), "delta": delta}
        )  # fmt: skip
    return {
        "baseline": baseline,
        "metrics": keys,
        "direction": {k: direction(k) for k in keys},
        "rows": out_rows,
        "best": best,
    }


def totals_of(run: EvaluationRun) -> RunTotals:
    return RunTotals(
        run.id, run.evaluation_id, run.model_name, flat_metrics(run.results), speed_of(run.results)
    )


def dataset_version_info(session: Session, version_id: int | None) -> dict[str, Any] | None:
    version = session.get(DatasetVersion, version_id) if version_id is not None else None
    if version is None:
        return None
    dataset = session.get(Dataset, version.dataset_id)
    return {"id": version.id, "number": version.number, "dataset_id": version.dataset_id,
            "dataset_name": dataset.name if dataset else None}  # fmt: skip


@dataclass(frozen=True)
class Selection:
    """Runs picked for a comparison, each with its (readable) evaluation, in the order asked."""

    runs: list[EvaluationRun]
    evaluations: dict[int, Evaluation]
    baseline: int


def select_runs(session: Session, *, actor: User, run_ids: Sequence[int], baseline: int | None) -> Selection:
    """The runs if the actor may read every one and they were scored on the same rows.

    An absent run and a run of an evaluation the actor may not read are the same 404, so the answer
    never tells which ids exist."""
    if not MIN_RUNS <= len(run_ids) <= MAX_RUNS or len(set(run_ids)) != len(run_ids):
        raise InvalidInput(
            f"runs: name {MIN_RUNS} to {MAX_RUNS} different runs",
            fields=[FieldIssue("runs", f"{MIN_RUNS} to {MAX_RUNS} different run ids")],
        )
    runs: list[EvaluationRun] = []
    evaluations: dict[int, Evaluation] = {}
    for run_id in run_ids:
        run = session.get(EvaluationRun, run_id)
        if run is None:
            raise NotFound("evaluation not found", code=CODE)
        if run.evaluation_id not in evaluations:
            evaluations[run.evaluation_id] = get_evaluation(
                session, actor=actor, evaluation_id=run.evaluation_id
            )
        runs.append(run)
    scored_on = {(e.dataset_version_id, e.split) for e in (evaluations[r.evaluation_id] for r in runs)}
    if len(scored_on) > 1:
        raise InvalidInput(
            "runs: these runs were scored on different test sets (dataset version or split)",
            fields=[FieldIssue("runs", "all runs must share one dataset version and split")],
        )
    chosen = run_ids[0] if baseline is None else baseline
    if chosen not in run_ids:
        raise InvalidInput(
            "baseline: not one of the compared runs",
            fields=[FieldIssue("baseline", "use one of the ids in runs")],
        )
    return Selection(runs, evaluations, chosen)


def compare_runs(
    session: Session, *, actor: User, run_ids: Sequence[int], baseline: int | None = None
) -> dict[str, Any]:
    """`POST /api/evaluations/compare`: the runs' totals, best per metric and deltas vs the baseline."""
    selection = select_runs(session, actor=actor, run_ids=run_ids, baseline=baseline)
    first = selection.evaluations[selection.runs[0].evaluation_id]
    return {
        "dataset_version": dataset_version_info(session, first.dataset_version_id),
        **rank([totals_of(r) for r in selection.runs], selection.baseline),
    }
