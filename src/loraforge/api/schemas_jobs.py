"""Request and response bodies of the job operations: resume, clone with a fix, priority, queue order,
logs by byte range, checkpoints and artifacts. `JobPublic` and the older job schemas live in
`api/schemas.py`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from loraforge.api.schemas import RequestModel
from loraforge.services.jobs.lifecycle import PRIORITY_MAX, PRIORITY_MIN

CheckpointName = Annotated[str, StringConstraints(pattern=r"^checkpoint-\d{1,12}$", max_length=64)]


class JobResume(RequestModel):
    checkpoint: CheckpointName | None = Field(
        default=None, description="A checkpoint name from GET /api/jobs/{id}/checkpoints; null: the latest."
    )


class JobClone(RequestModel):
    spec_patch: dict[str, Any] | None = Field(
        default=None,
        description="A JSON merge patch (RFC 7386) applied to the spec: keys replace, null removes. "
        "A failed job's `error.details.spec_patch` is the engine's suggested fix in this form.",
    )
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = (
        Field(default=None, description="Default: the source's name + ' (copy)'.")
    )


class JobPriority(RequestModel):
    priority: int = Field(ge=PRIORITY_MIN, le=PRIORITY_MAX, description="Higher is admitted first.")


class QueueReorder(RequestModel):
    job_ids: list[int] = Field(
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
    created_at: float = Field(description="Unix time the checkpoint was written.")
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
