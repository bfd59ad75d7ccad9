"""Asking for an export: checks (format and quantization allowed here and for this source, the files
on the server, room on the disk), then the new version (`exporting`) and its job (stage `export`,
through `services.jobs.submit.new_job` like every job), queued and audited in one transaction.

Who may export: whoever may change the model (its owner, admins), since the result is a new version of
it; readers who may not change it get 403 `not_owner`, strangers 404 (`services.models.catalog`).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.models import Job, JobStatus, ModelVersion, RegisteredModel, User
from loraforge.errors import Conflict, FieldIssue, InsufficientStorage, InvalidInput
from loraforge.services.export import formats
from loraforge.services.export.estimate import Estimate, estimate
from loraforge.services.jobs.states import transition
from loraforge.services.jobs.submit import new_job
from loraforge.services.models.catalog import get_version, record
from loraforge.services.models.resolution import load_paths
from loraforge.services.models.versions import ensure_ready, new_version
from loraforge.services.platform.audit import AuditAction
from loraforge.services.platform.owner_names import clip_name
from loraforge.settings import Settings

STAGE = "export"
TARGET_KEY = "export_target_version"  # the stored spec's key naming the version being produced
SOURCE_KEY = "export_source_version"
# The name an Ollama model gets (`ollama create <name>`); the engine may name files after it, so no
# path separators, no leading dot.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DISK_MARGIN = 64 << 20  # config, tokenizer, the verification's scratch files


def _invalid(field: str, message: str, code: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", code=code, fields=[FieldIssue(field=field, message=message)])


def check_choice(fmt: str, quantization: str | None, *, available_only: bool, where: str = "") -> str | None:
    """The quantization to use (the format's default when none is named); raises a 422 naming the
    field (`where` + name: "query." for query parameters) for a format or quantization that does not
    exist, or (with `available_only`) cannot run here."""
    fmt_field, quant_field = f"{where}format", f"{where}quantization"
    if fmt not in formats.EXPORT_FORMATS:
        raise _invalid(fmt_field, f"one of {', '.join(formats.EXPORT_FORMATS)}", "invalid_format")
    if available_only and (reason := formats.format_reason(fmt)) is not None:
        raise _invalid(fmt_field, f"{fmt} is unavailable on this server: {reason}", "format_unavailable")
    allowed = formats.quantizations(fmt)
    if quantization is None:
        return formats.DEFAULT_QUANTIZATION[fmt]
    if not allowed:
        raise _invalid(quant_field, f"{fmt} takes no quantization", "invalid_quantization")
    quantization = quantization.strip().lower()
    if quantization not in allowed:
        raise _invalid(quant_field, f"for {fmt}: one of {', '.join(allowed)}", "invalid_quantization")
    if available_only and (reason := formats.quantization_reason(fmt, quantization)) is not None:
        raise _invalid(quant_field, f"{quantization} is unavailable: {reason}", "quantization_unavailable")
    return quantization


def source_paths(
    session: Session, *, settings: Settings, model: RegisteredModel, version: ModelVersion, fmt: str,
    where: str = "",
) -> tuple[Path, Path | None]:  # fmt: skip
    """The base folder and adapter folder (or None) of a version that can be exported as `fmt`."""
    if version.format != "safetensors":
        raise Conflict(
            f"{model.name}@v{version.number} is already an export ({version.format}); export its source",
            code="not_exportable",
        )
    if fmt in formats.ADAPTER_ONLY and version.weights != "adapter":
        message = f"{fmt} is made from a LoRA adapter version; this version holds full weights"
        field = FieldIssue(field=f"{where}format", message=message)
        raise Conflict(message, code="not_an_adapter", fields=[field])
    ensure_ready(session, model, version)
    base, adapter = load_paths(session, settings=settings, version=version)
    if not Path(base).is_dir():  # a hub record without files: an export downloads nothing
        raise Conflict(
            f"the base model of {model.name}@v{version.number} has no files on this server ({base})",
            code="model_files_missing",
        )
    return Path(base), adapter


def estimate_version(
    session: Session, *, settings: Settings, actor: User, version_id: int, fmt: str,
    quantization: str | None, context: int | None,
) -> Estimate:  # fmt: skip
    """File size and memory to run for one version and choice (any listed choice, available or not)."""
    model, version = get_version(session, actor=actor, version_id=version_id)
    quantization = check_choice(fmt, quantization, available_only=False, where="query.")
    base, adapter = source_paths(
        session, settings=settings, model=model, version=version, fmt=fmt, where="query."
    )
    return estimate(base=base, adapter=adapter, fmt=fmt, quantization=quantization, context=context)


def _check_disk(settings: Settings, needed: int | None) -> None:
    if needed is None:
        return
    root = settings.runs_dir
    while not root.exists() and root != root.parent:
        root = root.parent
    free = shutil.disk_usage(root).free
    if free < needed + _DISK_MARGIN:
        message = f"the export needs about {needed >> 20} MiB and the server has {free >> 20} MiB free"
        raise InsufficientStorage(
            message, code="disk_full", fields=[FieldIssue(field="format", message=message)]
        )


def _export_name(model: RegisteredModel, version: ModelVersion, name: str | None) -> str:
    if name is None:
        stem = re.sub(r"[^a-z0-9._-]+", "-", model.name.lower()).strip("-._") or "model"
        return f"{stem[:58]}-v{version.number}"
    name = name.strip()
    if not _NAME.match(name):
        raise _invalid("name", "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                       "invalid_export_name")  # fmt: skip
    return name


def request_export(
    session: Session, *, settings: Settings, actor: User, version_id: int, fmt: str,
    quantization: str | None, name: str | None, ip: str | None,
) -> tuple[Job, ModelVersion]:  # fmt: skip
    """Queue an export of a version; the new version is listed at once as `exporting` and becomes
    `ready` (never current) when the job succeeds (`services.export.sync`)."""
    model, version = get_version(session, actor=actor, version_id=version_id, change=True)
    quantization = check_choice(fmt, quantization, available_only=True)
    export_name = _export_name(model, version, name)
    base, adapter = source_paths(session, settings=settings, model=model, version=version, fmt=fmt)
    sized = estimate(base=base, adapter=adapter, fmt=fmt, quantization=quantization)
    _check_disk(settings, sized.file_bytes)
    source = f"{model.name}@v{version.number}"
    label = f"{fmt} {quantization}" if quantization else fmt
    block = {"format": fmt, "quantization": quantization, "name": export_name}
    job = new_job(
        session, settings=settings, actor=actor, name=clip_name(f"export {source} {label}"), ip=ip,
        # `model_name_or_path` pins the source: the owner's access is checked again at launch, and a
        # rename or delete of the model waits for the job (`services.models.manage.model_in_use`).
        spec={"stage": STAGE, "model_name_or_path": source, "devices": "cpu", "export": block,
              SOURCE_KEY: version.id},
        details={"export_version_id": version.id, "format": fmt, "quantization": quantization},
    )  # fmt: skip
    kept = ("architecture", "model_type", "context_length", "param_count")
    info: dict[str, Any] = {k: v for k, v in (version.info or {}).items() if k in kept}
    info["export"] = {"format": fmt, "quantization": quantization, "name": export_name,
                      "estimated_bytes": sized.file_bytes}  # fmt: skip
    exported = new_version(
        session, model, weights="adapter" if fmt == "gguf_lora" else "full", status="exporting",
        format=formats.VERSION_FORMAT[fmt], quantization=quantization, source_job_id=job.id,
        base_version_id=version.base_version_id, base_ref=version.base_ref, parent_version_id=version.id,
        dataset_version_id=version.dataset_version_id, spec=version.spec,
        metrics=dict(version.metrics or {}), info=info, created_by=actor.id,
    )  # fmt: skip
    job.spec = {**job.spec, TARGET_KEY: exported.id}
    details = {"version_id": version.id, "job_id": job.id, "new_version_id": exported.id, "format": fmt,
               "quantization": quantization}  # fmt: skip
    record(
        session, AuditAction.model_export_requested, actor=actor, model_id=model.id, ip=ip, details=details
    )
    transition(session, job, JobStatus.queued)
    session.commit()
    return job, exported
