"""Jobs: create, read and list; events, metrics and logs; resume, clone with a fix, priority and the
queue order; checkpoints and artifacts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from loraforge.api.ids import Id
from loraforge.api.schemas.common import SPEC_LIMITS, Name, RequestModel, ResponseModel, SpecObject
from loraforge.services.jobs import reads
from loraforge.services.jobs.lifecycle import PRIORITY_MAX, PRIORITY_MIN

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from loraforge.db.models import Job

# `stopped`: a stop the user asked for has ended (resumable from a checkpoint); `cancelled`: killed at once.
JobStatusName = Literal[
    "draft", "queued", "starting", "running", "stopping", "succeeded", "failed", "cancelled", "stopped"
]
CheckpointName = Annotated[str, StringConstraints(pattern=r"^checkpoint-\d{1,12}$", max_length=64)]


class JobCreate(RequestModel):
    name: Name
    spec: SpecObject = Field(
        description=(
            "A job spec in the engine's vocabulary (LLaMA-Factory keys); `dataset` is the id of a LoRAForge "
            "dataset, `dataset_version` optionally a version id of it (default: its current version; "
            "pinned). "
            "`model_name_or_path`: `demo-tiny` or a Hugging Face hub id. " + SPEC_LIMITS
        )
    )
    start: bool = Field(default=False, description="Queue the job now (otherwise it stays a draft).")


class JobModelRef(BaseModel):
    model_id: int
    model_name: str
    version_id: int
    version_number: int


class JobPublic(ResponseModel):
    id: int
    owner_id: int
    owner: str = Field(default="", description="The owner's username.")
    name: str
    status: JobStatusName
    priority: int
    spec: dict[str, Any]
    dataset_id: int | None
    dataset_version_id: int | None
    executor: str
    exit_code: int | None
    error: dict[str, Any] | None = Field(
        description="Why it failed, was cancelled or stopped: code, message, suggestion, details. "
        "A stopped job's `details` has `step` (the last step reported) and `checkpoint` (the latest "
        "checkpoint, which resume continues from by default; null: nothing to resume)."
    )
    progress: float | None = Field(description="0..1 fraction of the training steps done.")
    last_event_seq: int
    created_at: datetime
    updated_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    attempt: int = Field(default=1, description="1, plus one per resume.")
    resume_from: str | None = Field(
        default=None, description="The checkpoint the latest attempt resumed from (a folder name)."
    )
    devices: list[int] | None = Field(default=None, description="GPU indices handed to the latest attempt.")
    pinned: bool = Field(default=False, description="Retention never removes a pinned job's files.")
    files_removed_at: datetime | None = Field(
        default=None, description="When retention removed the job's checkpoints and outputs."
    )

    produced_model: JobModelRef | None = Field(
        default=None, description="The model version this job produced (succeeded training and merge jobs)."
    )

    @classmethod
    def of(cls, job: Job, context: reads.JobContext) -> JobPublic:
        """The job with its owner's name and produced model (`reads.context` of its page)."""
        view = cls.model_validate(job)
        view.owner = context.owners.get(job.owner_id, "")
        produced = context.produced.get(job.id)
        view.produced_model = JobModelRef(**produced) if produced else None
        return view

    @classmethod
    def read(cls, session: Session, job: Job) -> JobPublic:
        return cls.of(job, reads.context(session, [job]))

    @classmethod
    def page(cls, session: Session, jobs: Sequence[Job]) -> list[JobPublic]:
        context = reads.context(session, jobs)
        return [cls.of(job, context) for job in jobs]

    @model_validator(mode="after")
    def _no_server_paths(self) -> JobPublic:
        # The error copies the engine's error event: shown like events, paths relative to the run.
        if self.error:
            self.error = reads.public_event(self.id, self.error)
        return self


class JobPage(BaseModel):
    items: list[JobPublic]
    total: int
    page: int
    page_size: int


class JobEventPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    seq: int
    type: str
    ts: datetime = Field(description="When the engine produced the event.")


class JobEvents(BaseModel):
    items: list[JobEventPublic]
    last_seq: int = Field(description="Pass as `after` to get the next events.")


class MetricPoint(BaseModel):
    step: int
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    epoch: float | None = None
    tokens_per_s: float | None = None
    progress: float | None = None
    eta_s: float | None = None
    elapsed_s: float | None = None


class EvalPoint(BaseModel):
    step: int
    eval_loss: float | None = None


class JobMetrics(BaseModel):
    total: int = Field(description="Training metric points recorded (before downsampling).")
    points: list[MetricPoint]
    eval: list[EvalPoint]


class QueueItem(BaseModel):
    position: int = Field(description="1-based place in the whole queue (admission order).")
    job: JobPublic


class QueueView(BaseModel):
    queued: list[QueueItem]
    active: list[JobPublic] = Field(description="Jobs starting, running or stopping.")


class JobResume(RequestModel):
    checkpoint: CheckpointName | None = Field(
        default=None, description="A checkpoint name from GET /api/jobs/{id}/checkpoints; null: the latest."
    )


class JobClone(RequestModel):
    spec_patch: SpecObject | None = Field(
        default=None,
        description="A JSON merge patch (RFC 7386) applied to the spec: keys replace, null removes. "
        "A failed job's `error.details.spec_patch` is the engine's suggested fix in this form.",
    )
    name: Name | None = Field(default=None, description="Default: the source's name + ' (copy)'.")


class JobPriority(RequestModel):
    priority: int = Field(ge=PRIORITY_MIN, le=PRIORITY_MAX, description="Higher is admitted first.")


class QueueReorder(RequestModel):
    job_ids: list[Id] = Field(
        min_length=1,
        max_length=1000,
        description="Queued job ids in the wanted order. They swap places among the positions they hold "
        "now; other queued jobs keep theirs.",
    )


class JobLogPage(BaseModel):
    lines: list[str] = Field(description="Readable lines (engine event lines shown as their message).")
    offset: int = Field(description="Byte offset in engine.log where these lines start.")
    next_offset: int = Field(description="Pass as `offset` to read on (follow the log).")
    size: int = Field(description="Size of engine.log in bytes when read.")


class CheckpointPublic(BaseModel):
    name: str = Field(description="The folder name, e.g. checkpoint-40 (use it to resume or download).")
    step: int
    created_at: datetime = Field(description="When the checkpoint was written.")
    size_bytes: int
    metrics: dict[str, Any] = Field(description="What the engine reported with the checkpoint.")


class CheckpointList(BaseModel):
    items: list[CheckpointPublic]


class ArtifactFile(BaseModel):
    path: str = Field(description="Relative to the artifact folder.")
    size_bytes: int


class ArtifactPublic(BaseModel):
    name: str = Field(description="The folder name in the run (e.g. output); download it as an archive.")
    kind: str = Field(description="adapter | full_model | ... (the engine's artifact kind)")
    size_bytes: int
    files: list[ArtifactFile]
    summary: dict[str, Any] | None = Field(description="The run summary (losses, steps, runtime) if written.")


class ArtifactList(BaseModel):
    items: list[ArtifactPublic]
