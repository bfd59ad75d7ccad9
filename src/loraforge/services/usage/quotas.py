"""Per-user quotas: GPU-hours per calendar month (UTC), running jobs at once, and storage.

Each limit is the user's override (`user_quotas`, set by an admin) or else the default from
settings (`LORAFORGE_QUOTA_GPU_HOURS_PER_MONTH`, `LORAFORGE_MAX_RUNNING_JOBS_PER_USER`,
`LORAFORGE_QUOTA_STORAGE_GB`); None means no limit.

Over a quota, `LORAFORGE_QUOTA_ACTION` decides: `refuse` (the default) refuses to queue the job at
submit with 403 `quota_exceeded`, naming the quota and the numbers (details field `quota.<name>`;
403 rather than 409 because waiting does not help: the limit or the usage has to change); `wait`
accepts it and admission keeps the owner's jobs queued until they are under the quota again (an admin
raised it, storage was freed, or a new month began). The running-jobs cap is never a refusal: jobs
over it simply wait their turn. GPU-hours only hold back jobs that need a GPU.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import JobUsage, User, UserQuota
from loraforge.errors import FieldIssue, Forbidden, NotFound
from loraforge.services.platform import audit
from loraforge.services.platform.audit import AuditAction
from loraforge.services.usage import storage
from loraforge.settings import Settings

GB = 1024**3  # the web UI's GB too
NAMES = ("gpu_hours_per_month", "max_running_jobs", "storage_bytes")
# In `wait` mode admission asks about storage on every tick; a walk is reused this long per user.
STORAGE_MAX_AGE_SECONDS = 15.0
_storage_seen: dict[tuple[str, int], tuple[float, int]] = {}


class QuotaExceeded(Forbidden):
    default_code = "quota_exceeded"


def month_of(when: datetime) -> str:
    return when.strftime("%Y-%m")


def defaults(settings: Settings) -> dict[str, Any]:
    gb = settings.quota_storage_gb
    return {
        "gpu_hours_per_month": settings.quota_gpu_hours_per_month,
        "max_running_jobs": settings.max_running_jobs_per_user,
        "storage_bytes": int(gb * GB) if gb is not None else None,
    }


def overrides(session: Session, user_id: int) -> dict[str, Any]:
    row = session.get(UserQuota, user_id)
    return {name: (getattr(row, name) if row is not None else None) for name in NAMES}


def effective(session: Session, settings: Settings, user_id: int) -> dict[str, Any]:
    """`{gpu_hours_per_month, max_running_jobs, storage_bytes}` in force for the user (None: no limit)."""
    base = defaults(settings)
    own = overrides(session, user_id)
    return {name: own[name] if own[name] is not None else base[name] for name in NAMES}


def running_cap(session: Session, settings: Settings, user_id: int) -> int:
    """How many of the user's jobs may be active at once (admission's per-user cap)."""
    cap = effective(session, settings, user_id)["max_running_jobs"]
    return int(cap) if cap is not None else settings.max_running_jobs_per_user


def gpu_hours_used(session: Session, user_id: int, month: str) -> float:
    seconds = session.scalar(
        select(func.coalesce(func.sum(JobUsage.gpu_seconds), 0.0)).where(
            JobUsage.owner_id == user_id, JobUsage.month == month
        )
    )
    return float(seconds or 0.0) / 3600.0


def _storage_used(settings: Settings, session: Session, user_id: int, max_age: float) -> int:
    key = (str(settings.data_dir), user_id)
    cached = _storage_seen.get(key)
    if max_age > 0 and cached is not None and time.monotonic() - cached[0] < max_age:
        return cached[1]
    used = storage.used_bytes(settings, session, user_id)
    _storage_seen[key] = (time.monotonic(), used)
    return used


def exceeded(
    session: Session, settings: Settings, user_id: int, *, gpus: int, storage_max_age: float = 0.0
) -> QuotaExceeded | None:
    """The first quota a new job of the user's (needing `gpus` GPUs) is over, as the error to raise;
    None when it is within every quota."""
    limits = effective(session, settings, user_id)
    gpu_limit = limits["gpu_hours_per_month"]
    if gpus > 0 and gpu_limit is not None:
        month = month_of(utcnow())
        used = gpu_hours_used(session, user_id, month)
        if used >= gpu_limit:
            message = (
                f"GPU-hours quota exceeded: {used:.2f} of {gpu_limit:g} GPU-hours used in {month}; "
                "this job needs a GPU"
            )
            return QuotaExceeded(
                message,
                fields=[
                    FieldIssue(field="quota.gpu_hours_per_month", message=f"{used:.2f} of {gpu_limit:g} used")
                ],
            )
    storage_limit = limits["storage_bytes"]
    if storage_limit is not None:
        used_bytes = _storage_used(settings, session, user_id, storage_max_age)
        if used_bytes >= storage_limit:
            message = (
                f"storage quota exceeded: {used_bytes:,} of {int(storage_limit):,} bytes used; "
                "delete datasets, jobs or models to make room"
            )
            return QuotaExceeded(
                message,
                fields=[
                    FieldIssue(
                        field="quota.storage_bytes",
                        message=f"{used_bytes} of {int(storage_limit)} bytes used",
                    )
                ],
            )
    return None


def check_submit(
    session: Session, settings: Settings, owner: User, spec: dict[str, Any], *, gpus: int | None = None
) -> None:
    """Refuse to queue a job of `owner`'s that is over a quota (`refuse` mode; module docstring).
    `gpus`: the job's GPU demand as admission counts it (jobs' `gpu_fit`); None reads the spec."""
    if settings.quota_action != "refuse":
        return
    need = gpus if gpus is not None else spec_gpus(spec, settings)
    error = exceeded(session, settings, owner.id, gpus=need)
    if error is not None:
        raise error


def holds(session: Session, settings: Settings, user_id: int, *, gpus: int) -> bool:
    """In `wait` mode: True while a job of the user's needing `gpus` GPUs must stay queued."""
    if settings.quota_action != "wait":
        return False
    return (
        exceeded(session, settings, user_id, gpus=gpus, storage_max_age=STORAGE_MAX_AGE_SECONDS) is not None
    )


def spec_gpus(spec: dict[str, Any], settings: Settings) -> int:
    """GPUs a spec asks for when no device was handed out (Ray): a device list counts its entries,
    `cpu` none, `auto` one where the node says it has GPUs."""
    devices = spec.get("devices", "auto")
    if spec.get("use_cpu") or devices == "cpu":
        return 0
    if isinstance(devices, list):
        return len(devices)
    if isinstance(devices, int) and not isinstance(devices, bool):
        return 1
    if isinstance(devices, str) and devices not in ("auto", ""):
        return len([d for d in devices.split(",") if d.strip()])
    return 1 if (settings.gpu_count or 0) > 0 else 0


# ---- admin: one user's overrides ------------------------------------------------------------------


def view(session: Session, settings: Settings, user_id: int) -> dict[str, Any]:
    """The user's overrides with what is in force and the defaults; 404 for an unknown user."""
    if session.get(User, user_id) is None:
        raise NotFound("user not found", code="user_not_found")
    return {
        "user_id": user_id,
        **overrides(session, user_id),
        "effective": effective(session, settings, user_id),
        "defaults": defaults(settings),
        "action": settings.quota_action,
    }


def update(
    session: Session, settings: Settings, *, actor: User, user_id: int, values: dict[str, Any], ip: str | None
) -> dict[str, Any]:
    """Replace the user's overrides (None: the default), audited; commits."""
    if session.get(User, user_id) is None:
        raise NotFound("user not found", code="user_not_found")
    before = overrides(session, user_id)
    after = {name: values.get(name) for name in NAMES}
    row = session.get(UserQuota, user_id)
    if all(value is None for value in after.values()):
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(UserQuota(user_id=user_id, **after))
    else:
        for name, value in after.items():
            setattr(row, name, value)
    audit.record(
        session, action=AuditAction.quota_changed, actor=actor, target_type="user", target_id=user_id,
        ip=ip, details={"from": before, "to": after},
    )  # fmt: skip
    session.commit()
    _storage_seen.pop((str(settings.data_dir), user_id), None)
    return view(session, settings, user_id)
