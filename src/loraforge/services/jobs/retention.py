"""Retention: free the disk that finished jobs hold, and show operators where the disk went.

The sweep removes `RUN_DIR/checkpoints` and `RUN_DIR/output` of jobs that are final (succeeded,
failed, cancelled, stopped: a stopped job left that long can no longer be resumed) for longer than
`retention_days` (0 = keep forever), not pinned, not already swept, and not needed by a registered
model. It keeps `spec.json`, `events.jsonl`, `engine.log` and
the rest of the run directory, so the job's history, curves and logs stay readable; only the heavy
weights go. Each removal sets `jobs.files_removed_at`, is audited (`job.files_removed`, no actor: the
system did it) and logged. Paths are built from job ids and checked to stay inside the runs folder.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.datastore import paths as dataset_paths
from loraforge.db.base import utcnow
from loraforge.db.models import FINAL, Dataset, Job, User
from loraforge.services.jobs.access import get_job, run_dir_of
from loraforge.services.models.versions import job_output_needed
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.retention")

REMOVED_SUBDIRS = ("checkpoints", "output")


def needed_by_model(session: Session, job: Job) -> bool:
    """Whether a registered model version's files are this job's output (fine-tuned and merged
    versions point at `RUN_DIR/output`, no copy): then the sweep keeps the job's files."""
    return job_output_needed(session, job_id=job.id)


def tree_size(path: Path) -> int:
    """Bytes of the regular files under `path` (symlinks are not followed: a linked model is not ours)."""
    total = 0
    try:
        if path.is_symlink() or path.is_file():
            return path.lstat().st_size if not path.is_symlink() else 0
        stack = [path]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        try:
                            if entry.is_dir(follow_symlinks=False):
                                stack.append(Path(entry.path))
                            elif entry.is_file(follow_symlinks=False):
                                total += entry.stat(follow_symlinks=False).st_size
                        except OSError:
                            continue
            except OSError:
                continue
    except OSError:
        return total
    return total


def _contained(root: Path, path: Path) -> Path | None:
    """`path` resolved, if it stays inside `root` (a symlinked run dir pointing elsewhere is refused)."""
    root = root.resolve()
    try:
        resolved = path.resolve()
    except OSError:
        return None
    return resolved if resolved.is_relative_to(root) and resolved != root else None


@dataclass(frozen=True)
class Removed:
    job_id: int
    name: str
    owner_id: int
    bytes_freed: int
    removed: list[str] = field(default_factory=list)  # sub-folder names that were removed


def remove_job_files(settings: Settings, job: Job) -> tuple[int, list[str]]:
    """Delete the job's checkpoints and outputs; returns (bytes freed, sub-folders removed)."""
    run_dir = run_dir_of(settings, job.id)
    freed, removed = 0, []
    for name in REMOVED_SUBDIRS:
        if (run_dir / name).is_symlink():  # never follow a link out of the run: drop the link itself
            (run_dir / name).unlink(missing_ok=True)
            removed.append(name)
            continue
        target = _contained(settings.runs_dir, run_dir / name)
        if target is None or not target.exists():
            continue
        size = tree_size(target)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
        freed += size
        removed.append(name)
    return freed, removed


def due_jobs(session: Session, *, settings: Settings, now: datetime) -> list[Job]:
    """Final jobs past the retention window whose files are still there and not pinned."""
    if settings.retention_days <= 0:
        return []
    cutoff = now - timedelta(days=settings.retention_days)
    query = (
        select(Job)
        .where(
            Job.status.in_([s.value for s in FINAL]),
            Job.finished_at.is_not(None),
            Job.finished_at < cutoff,
            Job.pinned.is_(False),
            Job.files_removed_at.is_(None),
        )
        .order_by(Job.finished_at, Job.id)
    )
    return [job for job in session.scalars(query) if not needed_by_model(session, job)]


def sweep(
    session: Session, *, settings: Settings, actor: User | None = None, now: datetime | None = None
) -> list[Removed]:
    """Remove the files of every due job (module docstring). Commits per job, so a crash midway
    leaves every finished removal recorded. `actor` is set when an admin ran it by hand."""
    now = now or utcnow()
    done: list[Removed] = []
    for job in due_jobs(session, settings=settings, now=now):
        freed, removed = remove_job_files(settings, job)
        job.files_removed_at = now
        audit.record(
            session, action=AuditAction.job_files_removed, actor=None, target_type="job", target_id=job.id,
            details={
                "bytes_freed": freed, "removed": removed, "retention_days": settings.retention_days,
                "requested_by": actor.username if actor is not None else "schedule",
            },
        )  # fmt: skip
        session.commit()
        logger.info(
            "retention: removed %s of job %s (%d bytes)", ", ".join(removed) or "nothing", job.id, freed
        )
        done.append(
            Removed(job_id=job.id, name=job.name, owner_id=job.owner_id, bytes_freed=freed, removed=removed)
        )
    return done


def run_now(session: Session, *, settings: Settings, actor: User, ip: str | None) -> list[Removed]:
    """An admin's sweep on demand (audited as `retention.run`, each removal as `job.files_removed`)."""
    ownership.ensure_role(actor, ownership.ADMIN_ONLY)
    removed = sweep(session, settings=settings, actor=actor)
    audit.record(
        session, action=AuditAction.retention_run, actor=actor, ip=ip,
        details={"jobs": len(removed), "bytes_freed": sum(r.bytes_freed for r in removed)},
    )  # fmt: skip
    session.commit()
    return removed


# ---- pin / unpin ----------------------------------------------------------------------------------------


def set_pinned(session: Session, *, actor: User, job_id: int, pinned: bool, ip: str | None) -> Job:
    """Pin (keep its files forever) or unpin a job; the owner only."""
    job = get_job(session, actor=actor, job_id=job_id, staff_may=frozenset())
    if job.pinned != pinned:
        job.pinned = pinned
        audit.record(
            session, action=AuditAction.job_pinned if pinned else AuditAction.job_unpinned, actor=actor,
            target_type="job", target_id=job.id, ip=ip,
        )  # fmt: skip
    session.commit()
    return job


# ---- storage report -------------------------------------------------------------------------------------


def storage_report(session: Session, *, settings: Settings, actor: User, largest: int) -> dict[str, Any]:
    """Disk usage for operators and admins: areas of the data dir, free space, per-user totals, the
    largest jobs. Walks the files (no cache): fine for thousands of runs, to be cached beyond that."""
    ownership.ensure_role(actor, ownership.STAFF)
    data_dir = settings.data_dir
    areas = {
        "runs": tree_size(settings.runs_dir),
        "datasets": tree_size(dataset_paths.datasets_root(data_dir)),
        "models": tree_size(settings.models_dir),
        "job_metrics": tree_size(data_dir / "job_metrics"),
        "uploads": tree_size(dataset_paths.uploads_root(data_dir)),
    }
    disk_info: dict[str, int | None]
    try:
        disk = shutil.disk_usage(data_dir if data_dir.exists() else data_dir.parent)
        disk_info = {"total_bytes": disk.total, "used_bytes": disk.used, "free_bytes": disk.free}
    except OSError:
        disk_info = {"total_bytes": None, "used_bytes": None, "free_bytes": None}

    users = {u.id: u.username for u in session.scalars(select(User))}
    per_user: dict[int, dict[str, Any]] = {}

    def bucket(owner_id: int) -> dict[str, Any]:
        return per_user.setdefault(
            owner_id,
            {
                "user_id": owner_id,
                "username": users.get(owner_id),
                "runs_bytes": 0,
                "datasets_bytes": 0,
                "jobs": 0,
            },
        )

    job_sizes: list[dict[str, Any]] = []
    for job in session.scalars(select(Job)):
        size = tree_size(run_dir_of(settings, job.id))
        entry = bucket(job.owner_id)
        entry["runs_bytes"] += size
        entry["jobs"] += 1
        job_sizes.append(
            {
                "job_id": job.id,
                "name": job.name,
                "owner_id": job.owner_id,
                "username": users.get(job.owner_id),
                "status": job.status,
                "bytes": size,
                "pinned": bool(job.pinned),
                "finished_at": job.finished_at,
                "files_removed_at": job.files_removed_at,
            }
        )
    for dataset in session.scalars(select(Dataset)):
        bucket(dataset.owner_id)["datasets_bytes"] += tree_size(
            dataset_paths.dataset_dir(dataset.id, data_dir)
        )
    for entry in per_user.values():
        entry["total_bytes"] = entry["runs_bytes"] + entry["datasets_bytes"]
    job_sizes.sort(key=lambda j: (-j["bytes"], j["job_id"]))
    return {
        **disk_info,
        "areas": areas,
        "users": sorted(per_user.values(), key=lambda u: (-u["total_bytes"], u["user_id"])),
        "largest_jobs": job_sizes[:largest],
        "retention_days": settings.retention_days,
    }
