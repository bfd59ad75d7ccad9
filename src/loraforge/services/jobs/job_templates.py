"""Job templates (saved specs), the spec schema for the form, and specs as YAML.

A template is a job spec without the obligation to name a dataset: templates are meant to be reused
across datasets, so `dataset` is optional. When it is present it must be a dataset the author may
use (checked like a job's), and a job created from the template still checks it for the user who
creates the job. Everything else is validated with the same rules as a job spec: server-path keys
are refused, researchers name only `demo-tiny` or hub ids, and the engine's `load_spec` checks the
rest (unknown keys with a did-you-mean).

Access (`services.platform.ownership`): the owner reads and changes; a `shared` template is readable by
everyone; staff (operators, admins) read every template. Only the owner changes or deletes one
(others who can see it get 403 `not_owner`; strangers 404).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import Job, JobTemplate, User
from loraforge.engine.spec import JobSpec
from loraforge.engine.spec_loading import SpecError, load_spec, spec_json_schema
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.jobs import specs as job_specs
from loraforge.services.jobs.access import get_job
from loraforge.services.jobs.spec_yaml import read_spec_yaml, spec_to_yaml
from loraforge.services.jobs.submit import create_job
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.audit import AuditAction
from loraforge.services.platform.owned_items import ItemPage, Library
from loraforge.services.platform.owner_names import OwnerUniqueName
from loraforge.settings import Settings

_PLACEHOLDER_DATA = "/dev/null/template-placeholder.jsonl"
# Keys the server owns: never stored in a template (derived) or refused (server paths).
_DROPPED_KEYS = (*job_specs.DERIVED_KEYS,)


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"invalid job spec: {field}: {message}",
        code="invalid_spec",
        fields=[FieldIssue(field=f"spec.{field}", message=message)],
    )


def check_template_spec(session: Session, *, actor: User, spec: dict[str, Any]) -> dict[str, Any]:
    """Validate a template's spec like a job's, with `dataset` optional; return what is stored."""
    job_specs.check_shape(spec)
    for key in job_specs.SERVER_PATH_KEYS:
        if spec.get(key) not in (None, "", [], "data"):
            raise _invalid(key, "set by the server (jobs read the pinned dataset version)")
    if isinstance(spec.get("resume_from_checkpoint"), str):
        raise _invalid("resume_from_checkpoint", "set by the server")
    # The same model rule as jobs (registered models, demo-tiny, hub ids; no server paths for researchers).
    spec = dict(spec)
    job_specs.check_model_refs(session, actor=actor, spec=spec)
    if spec.get("trust_remote_code") and actor.role_enum not in ownership.STAFF:
        raise _invalid("trust_remote_code", "only operators and admins may run a model's remote code")
    stored = {k: v for k, v in spec.items() if k not in _DROPPED_KEYS}
    if spec.get("dataset") not in (None, "", []):
        dataset, _version = job_specs.resolve_dataset(session, actor=actor, spec=spec)
        stored["dataset"] = dataset.id
        if spec.get("dataset_version") is not None:
            stored["dataset_version"] = _version.id
    else:
        stored.pop("dataset", None)
        stored.pop("dataset_version", None)
    candidate = {
        k: v for k, v in stored.items() if k not in ("dataset", "dataset_version", *job_specs.VALIDATION_KEYS)
    }
    candidate["dataset"] = [_PLACEHOLDER_DATA]
    try:
        load_spec(candidate)
    except SpecError as exc:
        raise job_specs.spec_error(exc) from None
    return stored


# ---- CRUD ------------------------------------------------------------------------------------------


def _can_read(actor: User, template: JobTemplate) -> bool:
    return template.shared or ownership.can_access(actor, template.owner_id, staff_may=ownership.STAFF)


# Changed and deleted by the owner only ("only the owner may change this template").
TEMPLATES = Library(
    JobTemplate, "template", can_read=_can_read, deleted=AuditAction.template_deleted,
    shared_where=JobTemplate.shared.is_(True),
)  # fmt: skip


def get_template(session: Session, *, actor: User, template_id: int, write: bool = False) -> JobTemplate:
    return TEMPLATES.get(session, actor=actor, item_id=template_id, write=write)


def list_templates(
    session: Session, *, actor: User, scope: str, owner_id: int | None, offset: int, limit: int
) -> ItemPage[JobTemplate]:
    """`mine`: own; `shared`: everyone's shared ones; `all`: own + shared. Staff may pass `owner_id`
    to see one user's templates, private ones included."""
    query = select(JobTemplate)
    if owner_id is not None and actor.role_enum in ownership.STAFF:
        query = query.where(JobTemplate.owner_id == owner_id)
    else:
        query = query.where(TEMPLATES.scope_where(actor, scope))
    return TEMPLATES.newest_first(session, query, offset=offset, limit=limit)


_NAMES = OwnerUniqueName(JobTemplate, "template")


def create_template(
    session: Session,
    *,
    actor: User,
    name: str,
    description: str,
    spec: dict[str, Any],
    shared: bool,
    ip: str | None,
) -> JobTemplate:
    stored = check_template_spec(session, actor=actor, spec=spec)
    _NAMES.ensure_free(session, owner_id=actor.id, name=name)
    template = JobTemplate(owner_id=actor.id, name=name, description=description, spec=stored, shared=shared)
    session.add(template)
    session.flush()
    audit.record(
        session, action=AuditAction.template_created, actor=actor, target_type="template",
        target_id=template.id, ip=ip, details={"name": name, "shared": shared},
    )  # fmt: skip
    _NAMES.commit(session, name)
    return template


def update_template(
    session: Session, *, actor: User, template_id: int, changes: dict[str, Any], ip: str | None
) -> JobTemplate:
    """Apply the given fields (name, description, spec, shared); the owner only."""
    template = get_template(session, actor=actor, template_id=template_id, write=True)
    if "spec" in changes:
        template.spec = check_template_spec(session, actor=actor, spec=changes["spec"])
    if "name" in changes and changes["name"] != template.name:
        _NAMES.ensure_free(session, owner_id=template.owner_id, name=changes["name"], exclude=template.id)
        template.name = changes["name"]
    if "description" in changes:
        template.description = changes["description"]
    if "shared" in changes:
        template.shared = bool(changes["shared"])
    audit.record(
        session, action=AuditAction.template_updated, actor=actor, target_type="template",
        target_id=template.id, ip=ip, details={"fields": sorted(changes)},
    )  # fmt: skip
    _NAMES.commit(session, template.name)
    return template


def delete_template(session: Session, *, actor: User, template_id: int, ip: str | None) -> None:
    TEMPLATES.delete(session, actor=actor, item_id=template_id, ip=ip)


def create_job_from_template(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    template_id: int,
    name: str,
    dataset: int | None,
    dataset_version: int | None,
    spec_patch: dict[str, Any] | None,
    start: bool,
    ip: str | None,
) -> Job:
    """A job from the template's spec (+ a patch), on `dataset` or the template's own dataset."""
    template = get_template(session, actor=actor, template_id=template_id)
    spec = {**template.spec, **(spec_patch or {})}
    if dataset is not None:
        spec["dataset"] = dataset
        spec.pop("dataset_version", None)
    if dataset_version is not None:
        spec["dataset_version"] = dataset_version
    return create_job(session, settings=settings, actor=actor, name=name, spec=spec, start=start, ip=ip)


# ---- YAML ---------------------------------------------------------------------------------------------


def job_spec_yaml(session: Session, *, actor: User, job_id: int) -> str:
    """The spec a job was created with (as the user wrote it, dataset version pinned), as YAML."""
    job = get_job(session, actor=actor, job_id=job_id)
    return spec_to_yaml(dict(job.spec))


@dataclass(frozen=True)
class ParsedSpec:
    spec: dict[str, Any]
    notes: list[str]


def parse_spec_yaml(session: Session, *, actor: User, text: str) -> ParsedSpec:
    """A YAML spec (ours, or a LLaMA-Factory training YAML) → a validated template spec.

    What only makes sense on the machine it was written for is dropped, with a note each: output
    and data paths, LF dataset names (not LoRAForge ids), and `trust_remote_code` for researchers.
    Unknown keys and bad values are errors (422 naming each key, with the engine's did-you-mean).
    """
    raw = read_spec_yaml(text)
    notes: list[str] = []
    for key in (*job_specs.SERVER_PATH_KEYS, *_DROPPED_KEYS):
        if key in raw:
            raw.pop(key)
            notes.append(f"{key}: dropped (the server sets it)")
    if isinstance(raw.get("resume_from_checkpoint"), str):
        raw.pop("resume_from_checkpoint")
        notes.append("resume_from_checkpoint: dropped (resume a job from its checkpoints instead)")
    dataset = raw.get("dataset")
    if dataset not in (None, "", []) and not _looks_like_id(dataset):
        raw.pop("dataset")
        raw.pop("dataset_version", None)
        notes.append(f"dataset: {dataset!r} dropped (not a LoRAForge dataset id; choose one in the form)")
    if raw.get("trust_remote_code") and actor.role_enum not in ownership.STAFF:
        raw.pop("trust_remote_code")
        notes.append("trust_remote_code: dropped (only operators and admins may run remote code)")
    return ParsedSpec(spec=check_template_spec(session, actor=actor, spec=raw), notes=notes)


def _looks_like_id(value: Any) -> bool:
    return job_specs.parse_id(value) is not None


def import_template(
    session: Session,
    *,
    actor: User,
    text: str,
    name: str | None,
    description: str,
    shared: bool,
    ip: str | None,
) -> tuple[JobTemplate, list[str]]:
    parsed = parse_spec_yaml(session, actor=actor, text=text)
    name = name or f"imported {datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
    template = create_template(
        session, actor=actor, name=name, description=description, spec=parsed.spec, shared=shared, ip=ip
    )
    return template, parsed.notes


# ---- the spec schema for the form -----------------------------------------------------------------------

# Shown first in the form; everything else the form may set is under "Advanced".
COMMON_KEYS: tuple[str, ...] = (
    "model_name_or_path",
    "template",
    "dataset",
    "dataset_version",
    "stage",
    "finetuning_type",
    "quantization_bit",
    "lora_rank",
    "lora_alpha",
    "lora_target",
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "cutoff_len",
    "val_size",
    "precision",
    "devices",
)
# Accepted in a spec but not offered by the form: set by the server, or LF flags that the form's
# own fields already express (bf16/fp16 → precision, flash_attn → attn_implementation, ...).
HIDDEN_KEYS: tuple[str, ...] = (
    *job_specs.SERVER_PATH_KEYS,
    *job_specs.DERIVED_KEYS,
    "resume_from_checkpoint",
    "compat_ignored",
    "do_train",
    "bf16",
    "fp16",
    "use_cpu",
    "flash_attn",
)


def spec_schema() -> dict[str, Any]:
    """The engine's JSON schema with LoRAForge's `dataset` / `dataset_version` (ids), and the groups
    the form uses for progressive disclosure: `common`, `advanced`, `hidden`."""
    schema = spec_json_schema()
    props: dict[str, Any] = dict(schema.get("properties", {}))
    props["dataset"] = {
        "title": "Dataset",
        "type": "integer",
        "minimum": 1,
        "maximum": job_specs.MAX_ROW_ID,
        "description": "The id of one of your LoRAForge datasets (required for a job; optional in a "
        "template).",
    }
    props["dataset_version"] = {
        "title": "Dataset Version",
        "anyOf": [{"type": "integer", "minimum": 1, "maximum": job_specs.MAX_ROW_ID}, {"type": "null"}],
        "default": None,
        "description": "A version id of the dataset (default: its current version, pinned when the job is "
        "created).",
    }
    schema["properties"] = props
    schema["required"] = sorted({*schema.get("required", []), "dataset"})
    fields = [*JobSpec.model_fields, "dataset_version"]
    common = [k for k in COMMON_KEYS if k in props]
    advanced = [k for k in fields if k not in COMMON_KEYS and k not in HIDDEN_KEYS]
    hidden = [k for k in HIDDEN_KEYS if k in props]
    return {"schema": schema, "groups": {"common": common, "advanced": advanced, "hidden": hidden}}
