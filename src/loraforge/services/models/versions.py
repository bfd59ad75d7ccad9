"""A model version's folder and state: where its files are, whether it is ready, its number, and
which job outputs registered versions point at.

Files: a version's folder is `version.path` when set (a fine-tuned or merged version points at its
job's `RUN_DIR/output`, no copy; a local base model at the folder staff registered), else the
id-derived `<models_dir>/<model_id>/versions/<version_id>` (hub downloads). Only id-derived folders and
job outputs belong to the registry; a registered local folder is never deleted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.models import FINAL, Job, JobStatus, ModelVersion, RegisteredModel
from loraforge.errors import Conflict
from loraforge.services.models import files as model_files
from loraforge.settings import Settings

# `<name>@v<number>`: a `/v1` model id naming one version (hub ids never contain '@').
VERSION_SUFFIX = re.compile(r"^(?P<name>.+)@v(?P<number>\d{1,9})$")


def version_dir(settings: Settings, *, model_id: int, version_id: int) -> Path:
    """The registry's own folder for a version (built from ids only)."""
    return settings.models_dir / str(int(model_id)) / "versions" / str(int(version_id))


def version_folder(settings: Settings, version: ModelVersion) -> Path:
    if version.path:
        return Path(version.path)
    return version_dir(settings, model_id=version.model_id, version_id=version.id)


def has_files(folder: Path) -> bool:
    return model_files.weights_kind(folder) is not None


def effective_status(session: Session, version: ModelVersion) -> str:
    """A `merging` or `exporting` version whose job ended without success is reported `failed` (the
    export's tick hook also stores it; a merge's row keeps `merging`)."""
    if version.status in ("merging", "exporting") and version.source_job_id is not None:
        job = session.get(Job, version.source_job_id)
        if job is None or (
            job.status in {s.value for s in FINAL} and job.status != JobStatus.succeeded.value
        ):
            return "failed"
    return version.status


def ensure_ready(session: Session, model: RegisteredModel, version: ModelVersion) -> None:
    status = effective_status(session, version)
    if status != "ready":
        raise Conflict(f"{model.name}@v{version.number} is {status}, not ready", code="model_not_ready")


def ensure_servable(model: RegisteredModel, version: ModelVersion) -> None:
    """Only safetensors versions load in transformers (chat, serving, training, merging, evaluating):
    an export (GGUF, ONNX…) is a file to download and run elsewhere."""
    if version.format != "safetensors":
        raise Conflict(
            f"{model.name}@v{version.number} is a {version.format} export: download it to run it in its "
            "runtime; chat, serving and training use a safetensors version of the model",
            code="model_not_servable",
        )


def new_version(session: Session, model: RegisteredModel, **values: Any) -> ModelVersion:
    """The model's next version (number = highest + 1), flushed so it has an id."""
    number = (
        session.scalar(select(func.max(ModelVersion.number)).where(ModelVersion.model_id == model.id)) or 0
    ) + 1
    version = ModelVersion(model_id=model.id, number=number, **values)
    session.add(version)
    session.flush()
    return version


def job_output(settings: Settings, job: Job) -> Path:
    """`RUN_DIR/output` of a job: where fine-tuned and merged versions keep their files."""
    return Path(job.run_dir or settings.runs_dir / str(job.id)) / "output"


def job_output_needed(session: Session, *, job_id: int) -> bool:
    """Whether a registered version's files are the job's output (retention must keep it)."""
    query = select(ModelVersion.id).where(
        ModelVersion.source_job_id == job_id, ModelVersion.path.is_not(None)
    )
    return session.scalar(query.limit(1)) is not None
