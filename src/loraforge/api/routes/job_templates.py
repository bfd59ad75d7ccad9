"""Templates (saved specs), shipped presets, the spec schema for the form, memory estimate, YAML.

Thin: parse, authorise, call `services.jobs.job_templates` / `services.jobs.presets` /
`services.jobs.memory_estimate`.
The `/jobs/spec-schema` and `/jobs/estimate` paths live here; this router is included before the
jobs router (see `api/routes/__init__.py`) so `/jobs/{job_id}` never captures `spec-schema`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError

from loraforge.api.deps import ClientIP, CurrentUser, SessionDep, SettingsDep
from loraforge.api.ids import Id
from loraforge.api.paging import Page, PageSize
from loraforge.api.schemas.jobs import JobPublic
from loraforge.api.schemas.templates import (
    EstimatePublic,
    EstimateRequest,
    ParsedSpecPublic,
    PresetHardware,
    PresetList,
    PresetPublic,
    SpecParse,
    SpecSchemaPublic,
    TemplateCreate,
    TemplateImport,
    TemplateImported,
    TemplateJobCreate,
    TemplatePage,
    TemplatePublic,
    TemplateUpdate,
)
from loraforge.db.models import JobTemplate, User
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.jobs import gpu_fit as gpus
from loraforge.services.jobs import job_templates as templates
from loraforge.services.jobs import memory_estimate, presets, spec_yaml
from loraforge.services.jobs.specs import DEMO_MODEL
from loraforge.services.platform import ownership
from loraforge.services.platform.changes import refuse_nulls
from loraforge.settings import Settings

router = APIRouter(tags=["templates"])
YAML_MEDIA_TYPE = "application/yaml"


def _public(template: JobTemplate, user: User) -> TemplatePublic:
    public = TemplatePublic.model_validate(template)
    public.editable = templates.TEMPLATES.is_editable(user, template)
    return public


def _yaml_attachment(text: str, filename: str) -> Response:
    # The file name is built from an id, never from a user's template or job name (header safety).
    return Response(
        content=text.encode("utf-8"),
        media_type=YAML_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _estimate(settings: Settings, user: User, spec: dict[str, Any]) -> EstimatePublic:
    result = memory_estimate.estimate_spec(
        spec,
        models_dir=settings.models_dir,
        demo_model=DEMO_MODEL,
        local_paths=user.role_enum in ownership.STAFF,
        host_has_gpu=gpus.inventory(settings) > 0,
    )
    return EstimatePublic.model_validate(result)


# ---- presets (literal paths before /templates/{template_id}) --------------------------------------------


@router.get("/templates/presets", response_model=PresetList, operation_id="templates_presets")
def list_presets(user: CurrentUser, settings: SettingsDep) -> PresetList:
    """Shipped presets for common model families (LoRA, QLoRA, full), each with a rough GPU memory need."""
    return PresetList(items=[_preset_public(p, settings, user) for p in presets.list_presets()])


@router.get("/templates/presets/{preset_id}", response_model=PresetPublic, operation_id="templates_preset")
def get_preset(preset_id: str, user: CurrentUser, settings: SettingsDep) -> PresetPublic:
    return _preset_public(presets.get_preset(preset_id), settings, user)


def _preset_public(preset: presets.Preset, settings: Settings, user: User) -> PresetPublic:
    # Estimate for the preset's own device (a GPU preset for a GPU even on a CPU-only server).
    result = memory_estimate.estimate_spec(
        preset.spec, models_dir=settings.models_dir, demo_model=DEMO_MODEL, local_paths=False,
        host_has_gpu=preset.hardware.device == "gpu",
    )  # fmt: skip
    return PresetPublic(
        id=preset.id,
        family=preset.family,
        size=preset.size,
        method=preset.method,
        model=preset.model,
        description=preset.description,
        hardware=PresetHardware(
            device=preset.hardware.device, min_gpu_memory_gb=preset.hardware.min_gpu_memory_gb
        ),
        runs_here=preset.hardware.runs_on(gpus.inventory(settings)),
        spec=preset.spec,
        estimate=EstimatePublic.model_validate(result),
    )


# ---- YAML import / parse ---------------------------------------------------------------------------


_IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            # Inlined: the route reads the raw request, so FastAPI never registers TemplateImport itself.
            "application/json": {"schema": TemplateImport.model_json_schema()},
            YAML_MEDIA_TYPE: {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}


async def _import_body(request: Request) -> TemplateImport:
    """JSON `{yaml, name, description, shared}`, or the YAML itself (name etc. from the query)."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "application/json":
            return TemplateImport.model_validate_json(raw)
        text = raw.decode("utf-8")
        params = request.query_params
        return TemplateImport(
            yaml=text,
            name=params.get("name") or None,
            description=params.get("description", ""),
            shared=params.get("shared", "false").lower() in ("1", "true", "yes"),
        )
    except UnicodeDecodeError:
        raise InvalidInput(
            "the YAML is not UTF-8 text", fields=[FieldIssue(field="yaml", message="not UTF-8 text")]
        ) from None
    except ValidationError as exc:
        fields = [
            FieldIssue(field=".".join(str(p) for p in e["loc"]) or "body", message=e["msg"])
            for e in exc.errors()
        ]
        raise InvalidInput("invalid import request", fields=fields) from None


@router.post(
    "/templates/import",
    response_model=TemplateImported,
    status_code=status.HTTP_201_CREATED,
    operation_id="templates_import",
    openapi_extra=_IMPORT_BODY,
)
async def import_template(
    request: Request, user: CurrentUser, session: SessionDep, ip: ClientIP
) -> TemplateImported:
    """Save a YAML spec as a template. Body: JSON `{yaml, name?, description?, shared?}`, or the YAML
    text itself (`Content-Type: application/yaml`, with `?name=&description=&shared=`). Malformed YAML →
    422 naming the line and column; unknown keys → 422 naming each (with a did-you-mean)."""
    body = await _import_body(request)
    # Parsing and the database are blocking work: off the event loop, as for the sync routes.
    template, notes = await run_in_threadpool(
        templates.import_template, session, actor=user, text=body.yaml, name=body.name,
        description=body.description, shared=body.shared, ip=ip,
    )  # fmt: skip
    return TemplateImported(template=_public(template, user), notes=notes)


@router.post("/templates/parse", response_model=ParsedSpecPublic, operation_id="templates_parse_yaml")
def parse_yaml(body: SpecParse, user: CurrentUser, session: SessionDep) -> ParsedSpecPublic:
    """Validate a YAML spec and return it as JSON without saving anything (the form's Import YAML)."""
    parsed = templates.parse_spec_yaml(session, actor=user, text=body.yaml)
    return ParsedSpecPublic(spec=parsed.spec, notes=parsed.notes)


# ---- templates ----------------------------------------------------------------------------------------


@router.get("/templates", response_model=TemplatePage, operation_id="templates_list")
def list_templates(
    user: CurrentUser,
    session: SessionDep,
    scope: Annotated[str, Query(pattern="^(all|mine|shared)$", description="all = yours + shared")] = "all",
    owner_id: Annotated[Id | None, Query(description="Operators and admins: one user's templates.")] = None,
    page: Page = 1,
    page_size: PageSize = 50,
) -> TemplatePage:
    """Your templates and the shared ones, most recently changed first."""
    found = templates.list_templates(
        session, actor=user, scope=scope, owner_id=owner_id, offset=(page - 1) * page_size, limit=page_size
    )
    return TemplatePage(
        items=[_public(t, user) for t in found.items], total=found.total, page=page, page_size=page_size
    )


@router.post(
    "/templates", response_model=TemplatePublic, status_code=status.HTTP_201_CREATED,
    operation_id="templates_create",
)  # fmt: skip
def create_template(
    body: TemplateCreate, user: CurrentUser, session: SessionDep, ip: ClientIP
) -> TemplatePublic:
    """Save a spec as a named template (unique per owner: 409 `template_name_taken`)."""
    template = templates.create_template(
        session, actor=user, name=body.name, description=body.description, spec=body.spec,
        shared=body.shared, ip=ip,
    )  # fmt: skip
    return _public(template, user)


@router.get("/templates/{template_id}", response_model=TemplatePublic, operation_id="templates_get")
def get_template(template_id: Id, user: CurrentUser, session: SessionDep) -> TemplatePublic:
    return _public(templates.get_template(session, actor=user, template_id=template_id), user)


@router.patch("/templates/{template_id}", response_model=TemplatePublic, operation_id="templates_update")
def update_template(
    template_id: Id, body: TemplateUpdate, user: CurrentUser, session: SessionDep, ip: ClientIP
) -> TemplatePublic:
    """Change name, description, spec or sharing (the owner only)."""
    changes = body.model_dump(exclude_unset=True)
    refuse_nulls(changes, ("name", "description", "spec", "shared"), first_only=True)
    template = templates.update_template(session, actor=user, template_id=template_id, changes=changes, ip=ip)
    return _public(template, user)


@router.delete(
    "/templates/{template_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="templates_delete"
)
def delete_template(template_id: Id, user: CurrentUser, session: SessionDep, ip: ClientIP) -> None:
    templates.delete_template(session, actor=user, template_id=template_id, ip=ip)


@router.get(
    "/templates/{template_id}/export",
    response_class=Response,
    operation_id="templates_export",
    responses={200: {"content": {YAML_MEDIA_TYPE: {"schema": {"type": "string"}}}}},
)
def export_template(template_id: Id, user: CurrentUser, session: SessionDep) -> Response:
    """The template's spec as a YAML attachment."""
    template = templates.get_template(session, actor=user, template_id=template_id)
    return _yaml_attachment(spec_yaml.spec_to_yaml(dict(template.spec)), f"template-{template.id}.yaml")


@router.post(
    "/templates/{template_id}/jobs",
    response_model=JobPublic,
    status_code=status.HTTP_201_CREATED,
    operation_id="templates_create_job",
)
def create_job_from_template(
    template_id: Id,
    body: TemplateJobCreate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    ip: ClientIP,
) -> JobPublic:
    """A job from the template (+ `spec_patch`), on `dataset` or the template's own dataset."""
    job = templates.create_job_from_template(
        session, settings=settings, actor=user, template_id=template_id, name=body.name,
        dataset=body.dataset, dataset_version=body.dataset_version, spec_patch=body.spec_patch,
        start=body.start, ip=ip,
    )  # fmt: skip
    if body.start:
        request.app.state.scheduler.wake()
    return JobPublic.model_validate(job)


# ---- spec schema, estimate, a job's spec as YAML --------------------------------------------------------


@router.get("/jobs/spec-schema", response_model=SpecSchemaPublic, operation_id="jobs_spec_schema")
def spec_schema(user: CurrentUser) -> SpecSchemaPublic:
    """The job spec's JSON schema (descriptions = tooltips) and the form's groups (common / advanced)."""
    return SpecSchemaPublic.model_validate(templates.spec_schema())


@router.post("/jobs/estimate", response_model=EstimatePublic, operation_id="jobs_estimate")
def estimate(body: EstimateRequest, user: CurrentUser, settings: SettingsDep) -> EstimatePublic:
    """A rough memory estimate of a spec per device (see `services/memory_estimate.py` for the formula)."""
    return _estimate(settings, user, body.spec)


@router.get(
    "/jobs/{job_id}/spec.yaml",
    response_class=Response,
    operation_id="jobs_spec_yaml",
    responses={200: {"content": {YAML_MEDIA_TYPE: {"schema": {"type": "string"}}}}},
)
def job_spec_yaml(job_id: Id, user: CurrentUser, session: SessionDep) -> Response:
    """The job's spec (as written, dataset version pinned) as a YAML attachment."""
    text = templates.job_spec_yaml(session, actor=user, job_id=job_id)
    return _yaml_attachment(text, f"job-{int(job_id)}-spec.yaml")
