"""Before/after: a training job submitted with an `evaluation` block (checked at submit by
`services.jobs.eval_request`) gets, once it succeeded, an evaluation "<job name> before/after" of its
base model and the model it produced, started at once, `source_job_id` = the job.

Found by the scheduler's sync: succeeded jobs of the last `LOOKBACK` without such an evaluation. A job
whose evaluation cannot be made (its dataset deleted, the owner disabled) is logged and not tried
again by this server process.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import Evaluation, Job, JobStatus, ModelVersion, RegisteredModel, User
from loraforge.errors import ServiceError
from loraforge.services.evaluation.create import EvaluationRequest, create_evaluation
from loraforge.services.jobs import eval_request
from loraforge.services.models.refs import DEMO_MODEL
from loraforge.services.models.versions import VERSION_SUFFIX
from loraforge.services.platform.owner_names import clip_name
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.evaluation")
LOOKBACK = timedelta(days=2)
_given_up: set[int] = set()


def _fine_tuned_name(session: Session, job: Job) -> str | None:
    row = session.execute(
        select(RegisteredModel.name, ModelVersion.number)
        .join(ModelVersion, ModelVersion.model_id == RegisteredModel.id)
        .where(ModelVersion.source_job_id == job.id)
        .order_by(ModelVersion.id)
        .limit(1)
    ).first()
    return f"{row[0]}@v{row[1]}" if row is not None else None


def _base_name(job: Job) -> str | None:
    """The base the job trained from, when evaluations can name it (demo-tiny or a pinned version)."""
    base = (job.spec or {}).get("model_name_or_path")
    if isinstance(base, str) and (base == DEMO_MODEL or VERSION_SUFFIX.match(base)):
        return base
    return None  # a hub id or a server folder: not a model an evaluation can name


def request_for(session: Session, job: Job) -> EvaluationRequest | None:
    block = (job.spec or {}).get(eval_request.SPEC_KEY)
    tuned = _fine_tuned_name(session, job)
    if not isinstance(block, dict) or tuned is None:
        return None
    base = _base_name(job)
    options = {"max_samples": block["max_samples"]} if block.get("max_samples") else {}
    return EvaluationRequest(
        name=clip_name(f"{job.name} before/after"),
        models=[base, tuned] if base is not None else [tuned],
        dataset=int(block["dataset"]),
        dataset_version=block.get("dataset_version"),
        metrics=list(block.get("metrics") or []),
        generation=block.get("generation"),
        options=options,
        source_job_id=job.id,
        start=True,
    )


def create_pending(session: Session, settings: Settings) -> list[Evaluation]:
    """Create (and start) the before/after evaluations of recently succeeded jobs that asked for one."""
    query = (
        select(Job)
        .outerjoin(Evaluation, Evaluation.source_job_id == Job.id)
        .where(
            Job.status == JobStatus.succeeded.value,
            Job.finished_at >= utcnow() - LOOKBACK,
            Evaluation.id.is_(None),
        )
        .order_by(Job.id)
        .limit(200)
    )
    created: list[Evaluation] = []
    for job in session.scalars(query).all():
        if job.id in _given_up or not isinstance((job.spec or {}).get(eval_request.SPEC_KEY), dict):
            continue
        owner = session.get(User, job.owner_id)
        request = request_for(session, job)
        if owner is None or owner.disabled or request is None:
            _given_up.add(job.id)
            continue
        try:
            created.append(
                create_evaluation(session, settings=settings, actor=owner, request=request, ip=None)
            )
        except ServiceError as exc:
            session.rollback()
            _given_up.add(job.id)
            logger.warning("before/after evaluation of job %s not created: %s", job.id, exc.message)
    return created
