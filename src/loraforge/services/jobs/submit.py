"""Making jobs: the one builder of a `Job` row (used for new jobs, clones and merge jobs), creating a
job from a user's spec (validated by the engine's schema, dataset version pinned), cloning one with
an optional spec patch, and submitting a draft to the queue. Status changes go through
`services.jobs.states.transition`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.models import Job, JobStatus, User
from loraforge.errors import Conflict
from loraforge.services.jobs import gpu_fit as gpus
from loraforge.services.jobs import precision
from loraforge.services.jobs import specs as job_specs
from loraforge.services.jobs.access import get_job, run_dir_of
from loraforge.services.jobs.inputs_access import ensure_inputs_readable
from loraforge.services.jobs.states import transition
from loraforge.services.platform import audit
from loraforge.services.platform.audit import AuditAction
from loraforge.services.platform.owner_names import clip_name
from loraforge.services.usage import quotas
from loraforge.settings import Settings


def new_job(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    name: str,
    spec: dict[str, Any],
    ip: str | None,
    details: dict[str, Any],
    dataset_id: int | None = None,
    dataset_version_id: int | None = None,
) -> Job:
    """A draft job of `actor`'s with its run directory (from the id, never from the name), audited as
    created (`details` beside its name). Every job row is made here; the caller commits."""
    job = Job(
        owner_id=actor.id,
        name=name,
        status=JobStatus.draft.value,
        priority=0,
        spec=spec,
        dataset_id=dataset_id,
        dataset_version_id=dataset_version_id,
        executor=settings.executor,
    )
    session.add(job)
    session.flush()
    job.run_dir = str(run_dir_of(settings, job.id))
    audit.record(
        session, action=AuditAction.job_created, actor=actor, target_type="job", target_id=job.id, ip=ip,
        details={"name": name, **details},
    )  # fmt: skip
    return job


def create_job(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    name: str,
    spec: dict[str, Any],
    start: bool,
    ip: str | None,
    fine_tuning: dict[str, Any] | None = None,
) -> Job:
    """A new job (draft, or queued with `start`); `fine_tuning` = the /v1/fine_tuning request as resolved."""
    checked = job_specs.check_spec(session, actor=actor, spec=spec)
    gpus.check_fits_node(settings, checked.spec)
    if start:
        _check_quota(session, settings, actor, checked.spec)
    stored, precision_note = precision.fit_to_device(settings, checked.spec)
    details: dict[str, Any] = {"dataset_id": checked.dataset.id, "dataset_version_id": checked.version.id}
    if precision_note:
        details["precision"] = precision_note
    job = new_job(
        session, settings=settings, actor=actor, name=name, spec=stored, ip=ip,
        dataset_id=checked.dataset.id, dataset_version_id=checked.version.id, details=details,
    )  # fmt: skip
    job.fine_tuning = fine_tuning
    if start:
        transition(session, job, JobStatus.queued)
        audit.record(
            session, action=AuditAction.job_started, actor=actor, target_type="job", target_id=job.id, ip=ip
        )
    session.commit()
    return job


def start_job(session: Session, *, settings: Settings, actor: User, job_id: int, ip: str | None) -> Job:
    job = get_job(session, actor=actor, job_id=job_id, staff_may=frozenset())
    if job.status != JobStatus.draft.value:  # failed/cancelled -> queued is resume's, not start's
        raise Conflict(f"a {job.status} job cannot be started; resume or clone it", code="invalid_transition")
    ensure_inputs_readable(session, job, owner=actor)  # access may have ended since the draft was made
    _check_quota(session, settings, actor, job.spec or {})
    transition(session, job, JobStatus.queued)
    audit.record(
        session, action=AuditAction.job_started, actor=actor, target_type="job", target_id=job.id, ip=ip
    )
    session.commit()
    return job


def _check_quota(session: Session, settings: Settings, owner: User, spec: dict[str, Any]) -> None:
    """Over a quota, queueing is refused (`refuse` mode) with the GPUs admission would count."""
    node_gpus = gpus.inventory(settings) if settings.executor == "local" else (settings.gpu_count or 0)
    quotas.check_submit(session, settings, owner, spec, gpus=gpus.demand(spec, node_gpus))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, a null removes the key, anything else
    replaces. `engine.failures` writes its suggested fixes in this form (`details.spec_patch`)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def clone_job(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    job_id: int,
    ip: str | None,
    spec_patch: dict[str, Any] | None = None,
    name: str | None = None,
) -> Job:
    """A new draft of the caller's with this job's spec (the same pinned dataset version), optionally
    changed by `spec_patch` (a JSON merge patch, e.g. the `spec_patch` of the job's error: "new job
    with the suggested fix"). The result is validated like a new job: a 422 names the field."""
    source = get_job(session, actor=actor, job_id=job_id)
    spec = merge_patch(dict(source.spec), spec_patch) if spec_patch else dict(source.spec)
    checked = job_specs.check_spec(session, actor=actor, spec=spec)
    gpus.check_fits_node(settings, checked.spec)
    name = name or clip_name(f"{source.name} (copy)")
    details: dict[str, Any] = {"cloned_from": source.id}
    if spec_patch:
        details["spec_patch"] = spec_patch
    stored, precision_note = precision.fit_to_device(settings, checked.spec)
    if precision_note:
        details["precision"] = precision_note
    job = new_job(
        session, settings=settings, actor=actor, name=name, spec=stored, ip=ip,
        dataset_id=checked.dataset.id, dataset_version_id=checked.version.id, details=details,
    )  # fmt: skip
    session.commit()
    return job
