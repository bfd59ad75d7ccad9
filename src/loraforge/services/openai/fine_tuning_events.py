"""A fine-tuning job's history as OpenAI objects: `fine_tuning.job.event` (status, log, error and
per-step metric messages) and `fine_tuning.job.checkpoint`, newest first, paged by id."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import Job, JobEvent, User
from loraforge.services.jobs import outputs
from loraforge.services.openai.fine_tuning import expected_model_name, fine_tuned_name, get, unix_seconds
from loraforge.services.openai.fine_tuning_spec import invalid
from loraforge.settings import Settings

_EVENT_ID = re.compile(r"^ftevent-([0-9]{1,18})-([0-9]{1,18})$")
_CHECKPOINT_ID = re.compile(r"^ftckpt-([0-9]{1,18})-([0-9]{1,18})$")
# Resource samples and per-step progress are monitoring noise for this API (its metric events carry
# the steps); everything else becomes an event.
_HIDDEN_EVENT_TYPES = ("resource", "progress")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _event_object(job: Job, event: JobEvent) -> dict[str, Any]:
    data = dict(event.data or {})
    level, kind, payload = "info", "message", None
    if event.type == "metric":
        kind = "metrics"
        payload = {"step": data.get("step"), "total_steps": data.get("total_steps"),
                   "train_loss": data.get("loss"), "learning_rate": data.get("lr"),
                   "grad_norm": data.get("grad_norm"), "epoch": data.get("epoch"),
                   "tokens_per_s": data.get("tokens_per_s"), "eta_s": data.get("eta_s")}  # fmt: skip
        payload.update({k: v for k, v in data.items() if k.startswith(("rewards_", "logps_"))})
        loss = _number(data.get("loss"))
        message = f"Step {data.get('step')}/{data.get('total_steps')}: training loss=" + (
            f"{loss:.4f}" if loss is not None else "n/a"
        )
    elif event.type == "eval":
        kind = "metrics"
        payload = {"step": data.get("step"), "valid_loss": data.get("eval_loss"),
                   "perplexity": data.get("perplexity"), **dict(data.get("metrics") or {})}  # fmt: skip
        loss = _number(data.get("eval_loss"))
        message = f"Step {data.get('step')}: validation loss=" + (
            f"{loss:.4f}" if loss is not None else "n/a"
        )
    elif event.type == "status":
        status = str(data.get("status", ""))
        level = "error" if status == "failed" else "info"
        message = f"Status: {status}" + (f": {data['message']}" if data.get("message") else "")
    elif event.type == "log":
        level = {"warning": "warn", "error": "error"}.get(str(data.get("level")), "info")
        message = str(data.get("message", ""))
    elif event.type == "error":
        level = "error"
        message = f"{data.get('code', 'error')}: {data.get('message', '')}"
        if data.get("suggestion"):
            message += f" ({data['suggestion']})"
    elif event.type == "checkpoint":
        message = f"Checkpoint created at step {data.get('step')}"
    elif event.type == "artifact":
        message = f"Saved {data.get('kind', 'artifact')}"
    else:
        message = event.type
    return {
        "object": "fine_tuning.job.event",
        "id": f"ftevent-{job.id}-{event.seq}",
        "created_at": int(event.ts),
        "level": level,
        "message": message,
        "data": payload,
        "type": kind,
    }


def _created_event(job: Job) -> dict[str, Any]:
    """OpenAI's first event; seq 0 sorts before every engine event (they start at 1)."""
    return {
        "object": "fine_tuning.job.event",
        "id": f"ftevent-{job.id}-0",
        "created_at": unix_seconds(job.created_at),
        "level": "info",
        "message": f"Created fine-tuning job: {job.id}",
        "data": None,
        "type": "message",
    }


@dataclass(frozen=True)
class ObjectPage:
    data: list[dict[str, Any]]
    has_more: bool


def events(session: Session, *, actor: User, job_id: str, after: str | None, limit: int) -> ObjectPage:
    """Newest first, like OpenAI; `after` = the last event id of the previous page (older ones follow)."""
    job = get(session, actor=actor, job_id=job_id)
    below: int | None = None
    if after:
        match = _EVENT_ID.fullmatch(after)
        if match is None or int(match.group(1)) != job.id:
            raise invalid("after", f"must be an event id of this job, like ftevent-{job.id}-12")
        below = int(match.group(2))
    query = select(JobEvent).where(JobEvent.job_id == job.id, JobEvent.type.not_in(_HIDDEN_EVENT_TYPES))
    if below is not None:
        query = query.where(JobEvent.seq < below)
    rows = list(session.scalars(query.order_by(JobEvent.seq.desc()).limit(limit + 1)))
    data = [_event_object(job, e) for e in rows]
    if below is None or below > 0:
        data.append(_created_event(job))
    return ObjectPage(data=data[:limit], has_more=len(data) > limit)


# ---- checkpoints ----------------------------------------------------------------------------------------


def _train_losses(session: Session, job_id: int) -> Iterator[tuple[int, float | None]]:
    rows = session.scalars(
        select(JobEvent.data)
        .where(JobEvent.job_id == job_id, JobEvent.type == "metric")
        .order_by(JobEvent.seq)
    )
    for data in rows:
        if isinstance(data.get("step"), int):
            yield data["step"], _number(data.get("loss"))


def checkpoints(
    session: Session, *, settings: Settings, actor: User, job_id: str, after: str | None, limit: int
) -> ObjectPage:
    """The job's complete checkpoints, newest first; `after` = the last checkpoint id of the previous page."""
    job = get(session, actor=actor, job_id=job_id)
    below: int | None = None
    if after:
        match = _CHECKPOINT_ID.fullmatch(after)
        if match is None or int(match.group(1)) != job.id:
            raise invalid("after", f"must be a checkpoint id of this job, like ftckpt-{job.id}-10")
        below = int(match.group(2))
    listing = outputs.checkpoints(session, settings=settings, actor=actor, job_id=job.id)
    losses = dict(_train_losses(session, job.id))
    model = fine_tuned_name(session, job) or expected_model_name(job)
    data: list[dict[str, Any]] = []
    for checkpoint, reported in sorted(listing, key=lambda item: item[0].step, reverse=True):
        if below is not None and checkpoint.step >= below:
            continue
        train_loss = _number(reported.get("loss"))
        if train_loss is None:
            train_loss = losses.get(checkpoint.step)
        metrics: dict[str, Any] = {"step": float(checkpoint.step), "train_loss": train_loss}
        if _number(reported.get("eval_loss")) is not None:
            metrics["valid_loss"] = float(reported["eval_loss"])
        data.append(
            {
                "object": "fine_tuning.job.checkpoint",
                "id": f"ftckpt-{job.id}-{checkpoint.step}",
                "created_at": int(checkpoint.created_at.timestamp()),
                "fine_tuned_model_checkpoint": f"{model}:ckpt-step-{checkpoint.step}",
                "step_number": checkpoint.step,
                "metrics": metrics,
                "fine_tuning_job_id": str(job.id),
            }
        )
    return ObjectPage(data=data[:limit], has_more=len(data) > limit)
