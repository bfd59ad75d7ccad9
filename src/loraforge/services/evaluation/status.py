"""How far an evaluation is: each run's state from its job, and the evaluation's from its runs.

Aggregate (CONTRACT): any job queued/starting/running/stopping → the most advanced of those
(running > stopping > starting > queued); else every run succeeded (and the judge job, if any) →
succeeded; else failed > cancelled > stopped; draft while something was never started.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import Evaluation, EvaluationRun, Job, JobEvent

_ACTIVE_ORDER = ("running", "stopping", "starting", "queued")
_ENDED_ORDER = ("failed", "cancelled", "stopped")


@dataclass(frozen=True)
class RunState:
    status: str | None  # the job's status; "succeeded" for a cached run; None without a job
    progress: float | None
    eta_s: float | None
    error: dict[str, Any] | None


def run_state(run: EvaluationRun, job: Job | None, eta_s: float | None = None) -> RunState:
    if job is None:
        return RunState(status="succeeded" if run.cached else None, progress=1.0 if run.cached else None,
                        eta_s=None, error=None)  # fmt: skip
    if run.cached or job.status == "succeeded":
        return RunState(status="succeeded", progress=1.0, eta_s=None, error=None)
    progress = job.progress if job.status != "draft" else None
    return RunState(status=job.status, progress=progress, eta_s=eta_s, error=job.error)


def aggregate(statuses: Iterable[str | None]) -> str:
    found = [s or "draft" for s in statuses]
    for status in _ACTIVE_ORDER:
        if status in found:
            return status
    if found and all(s == "succeeded" for s in found):
        return "succeeded"
    if "draft" in found:
        return "draft"
    for status in _ENDED_ORDER:
        if status in found:
            return status
    return "draft"


def latest_eta(session: Session, job_ids: list[int]) -> dict[int, float]:
    """The ETA of each job's latest metric event (the engine sends one per batch)."""
    out: dict[int, float] = {}
    for job_id in job_ids:
        data = session.scalar(
            select(JobEvent.data)
            .where(JobEvent.job_id == job_id, JobEvent.type == "metric")
            .order_by(JobEvent.seq.desc())
            .limit(1)
        )
        eta = (data or {}).get("eta_s")
        if isinstance(eta, int | float) and not isinstance(eta, bool):
            out[job_id] = float(eta)
    return out


@dataclass(frozen=True)
class Overview:
    status: str
    progress: float | None
    runs: dict[int, RunState]  # by run id
    jobs: dict[int, Job]  # the jobs of the runs and the judge job, by id


def overview(session: Session, evaluation: Evaluation, runs: list[EvaluationRun]) -> Overview:
    job_ids = [r.job_id for r in runs if r.job_id is not None]
    if evaluation.judge_job_id is not None:
        job_ids.append(evaluation.judge_job_id)
    jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids)))} if job_ids else {}
    active = [j.id for j in jobs.values() if j.status in ("starting", "running", "stopping")]
    etas = latest_eta(session, active)
    states = {
        r.id: run_state(r, jobs.get(r.job_id) if r.job_id else None, etas.get(r.job_id or 0)) for r in runs
    }
    # A run whose job just succeeded counts as running until the sync (same tick) copied its totals:
    # "succeeded" promises results.
    statuses: list[str | None] = [
        "running" if states[r.id].status == "succeeded" and r.results is None else states[r.id].status
        for r in runs
    ]
    judge = jobs.get(evaluation.judge_job_id) if evaluation.judge_job_id else None
    pairwise = (evaluation.judge or {}).get("mode") == "pairwise"
    if judge is not None:
        # Likewise the judging job: succeeded means its verdicts are in `judge_results`.
        done_without_verdicts = judge.status == "succeeded" and evaluation.judge_results is None
        statuses.append("running" if done_without_verdicts else judge.status)
    elif pairwise and statuses and all(s == "succeeded" for s in statuses):
        statuses.append("queued")  # the sync queues the judging job on its next tick
    status = aggregate(statuses)
    progress: float | None = None
    if status != "draft" and states:
        progress = round(sum(s.progress or 0.0 for s in states.values()) / len(states), 4)
    return Overview(status=status, progress=progress, runs=states, jobs=jobs)
