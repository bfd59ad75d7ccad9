"""Request and response models of templates, presets, the spec schema, YAML import and the estimate."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from loraforge.api.ids import Id
from loraforge.api.schemas.common import SPEC_LIMITS, Name, RequestModel, ResponseModel, SpecObject
from loraforge.engine.spec_loading import MAX_SPEC_DEPTH
from loraforge.services.jobs.spec_yaml import MAX_YAML_CHARS

Description = Annotated[str, StringConstraints(max_length=2000)]
# A spec's YAML: nesting and size beyond this are refused before parsing (`services/jobs/spec_yaml.py`).
YamlText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_YAML_CHARS)]
YAML_LIMITS = f"At most {MAX_YAML_CHARS} characters, nested at most {MAX_SPEC_DEPTH} levels, no aliases."
SPEC_DESCRIPTION = (
    "A job spec in the engine's vocabulary (as for POST /api/jobs). `dataset` (a LoRAForge dataset id) is "
    "optional in a template. " + SPEC_LIMITS
)


class TemplateCreate(RequestModel):
    name: Name
    description: Description = ""
    spec: SpecObject = Field(description=SPEC_DESCRIPTION)
    shared: bool = Field(default=False, description="Visible (read-only) to every user.")


class TemplateUpdate(RequestModel):
    name: Name | None = None
    description: Description | None = None
    spec: SpecObject | None = Field(default=None, description=SPEC_DESCRIPTION)
    shared: bool | None = None


class TemplatePublic(ResponseModel):
    id: int
    owner_id: int
    name: str
    description: str
    spec: dict[str, Any]
    shared: bool
    created_at: datetime
    updated_at: datetime
    editable: bool = Field(default=False, description="Whether the caller may change or delete it (owner).")


class TemplatePage(BaseModel):
    items: list[TemplatePublic]
    total: int
    page: int
    page_size: int


class TemplateImport(RequestModel):
    yaml: YamlText = Field(
        description="A YAML spec: ours (GET .../export, .../spec.yaml) or a LLaMA-Factory training YAML. "
        + YAML_LIMITS
    )
    name: Name | None = Field(default=None, description="Default: `imported <date time>`.")
    description: Description = ""
    shared: bool = False


class TemplateImported(BaseModel):
    template: TemplatePublic
    notes: list[str] = Field(description="Keys dropped because they only make sense on another machine.")


class SpecParse(RequestModel):
    yaml: YamlText = Field(description=YAML_LIMITS)


class ParsedSpecPublic(BaseModel):
    spec: dict[str, Any]
    notes: list[str]


class TemplateJobCreate(RequestModel):
    name: Name
    dataset: Id | None = Field(default=None, description="Dataset id (default: the template's own).")
    dataset_version: Id | None = Field(default=None, description="Version id (default: current).")
    spec_patch: SpecObject | None = Field(default=None, description="Keys that override the template's.")
    start: bool = Field(default=False, description="Queue the job now (otherwise it stays a draft).")


class EstimateRequest(RequestModel):
    spec: SpecObject = Field(description="A (possibly incomplete) job spec; nothing is validated.")


class EstimateParts(BaseModel):
    weights: float
    adapters: float
    optimizer: float = Field(description="fp32 gradients + AdamW moments of the trainable parameters.")
    activations: float
    total: float


class EstimatePublic(BaseModel):
    params_b: float | None = Field(description="Model parameters in billions; null when unknown.")
    estimate_gb: EstimateParts = Field(description="GB (10^9 bytes) per device.")
    device: Literal["gpu", "cpu"]
    notes: list[str]
    source: str = Field(description="Where the parameter count came from.")


class PresetHardware(BaseModel):
    device: Literal["cpu", "gpu"] = Field(
        description="Where the preset runs. A CPU preset pins `devices: cpu` and `precision: fp32`."
    )
    min_gpu_memory_gb: float | None = Field(
        description="GPU memory (GB) it needs, at least the memory estimate; null for CPU presets."
    )


class PresetPublic(BaseModel):
    id: str
    family: str
    size: str = Field(description="As the model's name says it, e.g. `7B`; `tiny` for the demo model.")
    method: Literal["lora", "qlora", "full"]
    model: str
    description: str
    hardware: PresetHardware
    runs_here: bool = Field(
        description="Whether this server can run it: a CPU preset always; a GPU preset when the server has "
        "a GPU. On a server without one, bf16/fp16 in a submitted spec becomes fp32."
    )
    spec: dict[str, Any] = Field(description="The spec without `dataset`.")
    estimate: EstimatePublic = Field(description="Rough memory need on the preset's device.")


class PresetList(BaseModel):
    items: list[PresetPublic]


class SpecGroups(BaseModel):
    common: list[str] = Field(description="Shown first.")
    advanced: list[str] = Field(description="Under an 'Advanced' collapse.")
    hidden: list[str] = Field(description="Accepted in a spec but set by the server or by other fields.")


class SpecSchemaPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    json_schema: dict[str, Any] = Field(
        alias="schema", description="JSON schema of the spec; field descriptions are the form's tooltips."
    )
    groups: SpecGroups
