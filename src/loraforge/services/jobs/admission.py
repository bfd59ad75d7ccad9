"""Admission: queued jobs started in order (priority desc, queue time, id) within the per-user and
global running caps and the free GPUs, on the node `services.jobs.placement` picks, each prepared
(data files, spec.json, demo model, the checkpoint to resume from) and launched by the executor.

Stages owned by a domain above jobs (evaluation) bring their own spec builder (`StageBuilder`): the
app hands them to the scheduler, which passes them here, so jobs never imports those domains.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.models import ACTIVE, DatasetVersion, Job, JobStatus
from loraforge.errors import ServiceError
from loraforge.executors.base import Executor
from loraforge.services.jobs import eval_request, merge, placement
from loraforge.services.jobs import files as job_files
from loraforge.services.jobs import gpu_fit as gpus
from loraforge.services.jobs import specs as job_specs
from loraforge.services.jobs.access import job_run_dir
from loraforge.services.jobs.inputs_access import ensure_inputs_readable
from loraforge.services.jobs.states import StaleJobState, transition
from loraforge.services.usage import quotas
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.scheduler")


@dataclass(frozen=True)
class StageLaunch:
    """What a stage builder makes of a job: RUN_DIR/spec.json, and environment variables for the engine
    (secrets such as API keys go here, never into a file)."""

    spec: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    checkpoint_resume: bool = True  # False: the engine resumes from its own files, no checkpoint


# (session, settings, job, run_dir, num_gpus) -> StageLaunch; raises ServiceError/RuntimeError to refuse.
StageBuilder = Callable[[Session, Settings, Job, Path, int], StageLaunch]


def _has_gpu() -> bool:
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def admit(
    session: Session, settings: Settings, executor: Executor, stages: Mapping[str, StageBuilder] | None = None
) -> None:
    """Start queued jobs in order (priority desc, queued_at, id) within the per-user and global
    caps and the free GPUs (`services.jobs.gpu_fit`). A job whose GPUs are not free now waits, and jobs
    behind it that fit (fewer GPUs, or CPU only) may start before it: the node stays busy, at the
    price that a many-GPU job can wait long on a busy node (operators raise its priority, or
    reorder, to hold the others back). A job needing more GPUs than the node has fails at once."""
    active = [s.value for s in ACTIVE]
    per_user = dict(
        session.execute(
            select(Job.owner_id, func.count()).where(Job.status.in_(active)).group_by(Job.owner_id)
        ).all()
    )
    running = sum(per_user.values())
    if running >= settings.max_running_jobs:
        return
    nodes = placement.placer(session, executor.name)
    if nodes.closed:
        return  # the local node is draining, drained, unhealthy or lost: the queue waits for it
    queued = session.scalars(
        select(Job)
        .where(Job.status == JobStatus.queued.value)
        .order_by(Job.priority.desc(), Job.queued_at.asc(), Job.id.asc())
        .limit(1000)
    ).all()
    # Device indices are handed out only by the local executor; Ray places GPUs itself and just
    # gets the count (`auto` counts as one GPU only where LORAFORGE_GPU_COUNT says GPUs exist).
    local = executor.name == "local"
    node_gpus = gpus.inventory(settings) if local else (settings.gpu_count or 0)
    free = set(range(node_gpus)) - gpus.held_devices(session) if local else set()
    for job in queued:
        if running >= settings.max_running_jobs:
            break
        if per_user.get(job.owner_id, 0) >= quotas.running_cap(session, settings, job.owner_id):
            continue
        need = gpus.demand(job.spec, node_gpus)
        if quotas.holds(session, settings, job.owner_id, gpus=need):
            continue  # over a quota in `wait` mode: stays queued until the quota or the usage changes
        devices: list[int] | None = None
        if local and need > node_gpus:
            _refuse(session, job, need, node_gpus)
            continue
        if local and need:
            devices = gpus.pick(need, free, gpus.requested_indices(job.spec))
            if devices is None:
                continue  # waits for devices; later jobs that fit may go first
        where = nodes.place(need, job.excluded_nodes or ())
        if where is None:
            continue  # no node can take it now (Ray: drained, excluded, lost or too few GPUs)
        try:
            transition(session, job, JobStatus.starting, devices=devices, node_id=where.node_id)
            session.commit()
        except StaleJobState:
            continue
        free -= set(devices or [])
        per_user[job.owner_id] = per_user.get(job.owner_id, 0) + 1
        running += 1
        launch(session, settings, executor, job, num_gpus=need, stages=stages, node=where.external)


def _refuse(session: Session, job: Job, need: int, node_gpus: int) -> None:
    """Fail a job that can never fit this node (submit refuses it too; the node may have shrunk)."""
    with contextlib.suppress(StaleJobState):
        transition(session, job, JobStatus.starting)
        transition(session, job, JobStatus.failed, error={
            "code": "not_enough_gpus",
            "message": f"The job needs {need} GPU(s) but this node has {node_gpus}.",
            "suggestion": "Set devices to fewer GPU indices, or to cpu.",
            "details": {"spec_patch": {"devices": "cpu"}} if node_gpus == 0 else {},
        })  # fmt: skip
        session.commit()


def _training_spec(session: Session, settings: Settings, job: Job, run_dir: Path) -> dict[str, Any]:
    version = session.get(DatasetVersion, job.dataset_version_id) if job.dataset_version_id else None
    if version is None:
        raise RuntimeError("the pinned dataset version no longer exists")
    validation_id = (job.spec or {}).get("validation_dataset_version")
    validation = session.get(DatasetVersion, validation_id) if isinstance(validation_id, int) else None
    spec = job_specs.engine_spec(
        settings, spec=job.spec, version=version, run_dir=run_dir, validation=validation
    )
    job_specs.apply_registered_models(session, settings=settings, spec=spec)
    return spec


def launch(
    session: Session,
    settings: Settings,
    executor: Executor,
    job: Job,
    *,
    num_gpus: int = 0,
    stages: Mapping[str, StageBuilder] | None = None,
    node: str | None = None,
) -> None:
    """Prepare the run directory (spec.json, data files) and start the job's process (on `node`, the
    executor's id of the node placement chose, when it names one); a failure on the way fails the
    job with the reason (`launch_failed`, or the code of a refusal such as `model_not_accessible`)."""
    run_dir = job_run_dir(settings, job)
    try:
        # Checked again here: the owner may have lost access to a pinned model or dataset while the
        # job waited in the queue.
        ensure_inputs_readable(session, job)
        run_dir.mkdir(parents=True, exist_ok=True)
        stage = (job.spec or {}).get("stage")
        extra_env: dict[str, str] = {}
        builder = (stages or {}).get(stage) if isinstance(stage, str) else None
        checkpoint_resume = True
        if builder is not None:
            built = builder(session, settings, job, run_dir, num_gpus)
            spec, extra_env, checkpoint_resume = built.spec, built.env, built.checkpoint_resume
        elif merge.is_merge(job):
            # A merge job (model registry) has no dataset: base + adapter folders from the version.
            spec = merge.merge_engine_spec(session, settings=settings, job=job, run_dir=run_dir)
        elif stage == eval_request.STAGE:
            raise RuntimeError("this server cannot launch evaluation jobs (no evaluation stage registered)")
        else:
            spec = _training_spec(session, settings, job, run_dir)
        if job.resume_from and checkpoint_resume:
            # Looked up in the run's own listing (the name was validated at resume time; retention
            # may have removed it since): never a path a user wrote.
            checkpoint = job_files.find_checkpoint(run_dir, job.resume_from)
            if checkpoint is None:
                raise RuntimeError(f"checkpoint {job.resume_from} to resume from no longer exists")
            spec["resume_from_checkpoint"] = str(checkpoint.path)
        if job.devices and isinstance(spec.get("devices"), list):
            # The engine pins a device list itself (torchrun + CUDA_VISIBLE_DEVICES): give it the
            # indices admission handed out rather than the ones the user asked for.
            spec["devices"] = list(job.devices)
        (run_dir / "spec.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra_env)
        env.setdefault("LORAFORGE_DATA_CACHE", str(settings.data_dir / "cache" / "data"))
        if job.devices:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in job.devices)
        elif spec.get("devices") == "cpu" or spec.get("use_cpu") or not _has_gpu() or num_gpus == 0:
            env["CUDA_VISIBLE_DEVICES"] = ""
        # The GPU count and the node only when there is one: executors written before they joined
        # the Protocol (test doubles) keep working for CPU jobs on one node.
        extra: dict[str, Any] = {"num_gpus": num_gpus} if num_gpus else {}
        if node:
            extra["node"] = node
        ref = executor.launch(job_id=job.id, run_dir=run_dir, env=env, **extra)
    except Exception as exc:
        if isinstance(exc, ServiceError):  # a refusal with its own code, not a fault: no traceback
            logger.warning("job %s not launched: %s", job.id, exc.message)
            code, message = exc.code, exc.message
        else:
            logger.exception("launching job %s failed", job.id)
            code, message = "launch_failed", str(exc)
        session.rollback()
        job = session.get(Job, job.id) or job
        with contextlib.suppress(StaleJobState):
            transition(session, job, JobStatus.failed, error={
                "code": code, "message": message[:4000], "suggestion": None, "details": {},
            })  # fmt: skip
            session.commit()
        return
    session.refresh(job)
    job.pid, job.pid_started_at, job.engine_spec = ref.pid, ref.started_at, spec
    job.external_id = ref.external_id
    job.executor = executor.name  # where it really ran
    session.commit()
    # A stop or cancel may have arrived while launching (the job had no PID to signal yet).
    if job.status == JobStatus.stopping.value:
        executor.stop(ref)
    elif job.status == JobStatus.cancelled.value:
        executor.cancel(ref)
