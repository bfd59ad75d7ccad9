"""Request and response bodies of the model registry (`/api/models`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from loraforge.api.ids import Id
from loraforge.api.schemas.common import Name, RequestModel
from loraforge.api.schemas.jobs import JobPublic

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
ModelKind = Literal["base", "finetuned"]
VersionStatus = Literal["ready", "downloading", "merging", "exporting", "failed"]
VersionFormat = Literal["safetensors", "gguf", "gguf_lora", "ollama", "onnx"]


class ModelCreate(RequestModel):
    name: Name = Field(
        description="The model id in /v1 (unique): letters, digits and . _ : / @ -; not `demo-tiny`, not "
        "starting with `ft:`, not ending with `@v<number>`."
    )
    source: Literal["hub", "local"] = Field(
        description="`hub`: a Hugging Face hub id; `local`: a server folder (operators and admins, inside "
        "the configured import roots)."
    )
    ref: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4096)] = Field(
        description="The hub id (e.g. Qwen/Qwen2.5-0.5B) or the server folder."
    )
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    shared: bool = Field(default=False, description="Readable (and usable) by every user.")
    download: bool = Field(
        default=True,
        description="Hub models: fetch the files now (the version is `downloading`, then `ready` or "
        "`failed`). False: only the record; loaders fetch by hub id when used.",
    )


class ModelUpdate(RequestModel):
    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    shared: bool | None = None


class ModelBaseRef(BaseModel):
    model_id: int | None = Field(description="Set when the base is a registered model.")
    version_id: int | None
    name: str = Field(description="`<name>@v<n>` of a registered base, else the ref (demo-tiny, hub id).")
    ref: str | None = Field(description="demo-tiny, a hub id or a folder, when the base is not registered.")


class ModelJobRef(BaseModel):
    id: int
    name: str
    status: str


class ModelDatasetRef(BaseModel):
    id: int
    name: str
    version_id: int
    version_number: int


class ExportFile(BaseModel):
    name: str = Field(description="GET /api/models/versions/{id}/files/{name} downloads it (HTTP Range).")
    size: int | None
    sha256: str | None


class VersionExport(BaseModel):
    """What an export version was asked for and what it produced (its files and ready-to-run commands)."""

    format: str = Field(description="The export's format: gguf, gguf_lora, ollama, onnx or merged.")
    quantization: str | None
    name: str = Field(description="The model name used in the commands (`ollama create <name>`).")
    estimated_bytes: int | None = None
    files: list[ExportFile] = Field(default_factory=list, description="Empty until the export is ready.")
    commands: dict[str, str] = Field(
        default_factory=dict, description="Copy-paste commands by runtime: ollama, llama_cli…"
    )


class ModelVersionPublic(BaseModel):
    id: int
    model_id: int
    model_name: str
    number: int
    name: str = Field(description="`<model name>@v<number>`: this version's /v1 model id.")
    weights: Literal["full", "adapter"]
    status: VersionStatus
    is_current: bool = Field(description="The version the bare model name serves.")
    base: ModelBaseRef | None = Field(
        description="What an adapter sits on (for merged versions: where from)."
    )
    source_job: ModelJobRef | None = Field(description="The training (or merge) job that produced it.")
    dataset: ModelDatasetRef | None = Field(description="The dataset version it was trained on.")
    parent_version_id: int | None = Field(
        description="Merged versions: the adapter version merged; continued training: the adapter continued."
    )
    metrics: dict[str, Any] = Field(
        description="final_train_loss, final_eval_loss, steps, train_loss, runtime_s… (what is known)."
    )
    spec: dict[str, Any] | None = Field(description="The job spec that produced it.")
    info: dict[str, Any] = Field(
        description="Detected: architecture, model_type, param_count, context_length, chat_template (bool), "
        "weights; adapters: peft_type, lora_rank, adapter_base; hub records: hub_id; failures: error."
    )
    tags: list[str]
    notes: str
    size_bytes: int | None
    format: VersionFormat = Field(
        description="safetensors (trained, merged, registered: chat and serving load it) or an export's "
        "format (downloaded and run elsewhere; chat answers 409 model_not_servable)."
    )
    quantization: str | None = Field(description="An export's quantization (q8_0, f16, int4…).")
    sha256: str | None = Field(description="An export's main file's SHA-256.")
    verification: dict[str, Any] | None = Field(
        description="An export's read-back check: ok, reader, prompt, tokens_compared, agreement (0-1), "
        "identical, detail."
    )
    export: VersionExport | None = Field(description="Export versions: the request and the files.")
    created_by: int | None
    created_at: datetime


class ModelPublic(BaseModel):
    id: int
    name: str = Field(description="The /v1 model id (serves the current version).")
    kind: ModelKind
    description: str
    shared: bool
    source: str = Field(description="hub | local | job (fine-tuned)")
    source_ref: str | None = Field(description="The hub id, the server folder, or the source job id.")
    owner_id: int
    owner: str = Field(description="The owner's username.")
    can_edit: bool = Field(description="Whether the caller may rename, share, delete, add versions, merge.")
    current_version_id: int | None
    current_version: ModelVersionPublic | None
    version_count: int
    created_at: datetime
    updated_at: datetime


class ModelPage(BaseModel):
    items: list[ModelPublic]
    total: int
    page: int
    page_size: int


class ModelVersionList(BaseModel):
    items: list[ModelVersionPublic] = Field(description="Newest first.")


class ModelVersionCreate(RequestModel):
    job_id: Id = Field(description="A succeeded training job of yours; its output becomes the next version.")


class ModelVersionUpdate(RequestModel):
    tags: list[Tag] | None = Field(default=None, max_length=32, description="Replaces the tags.")
    notes: Annotated[str, StringConstraints(max_length=20_000)] | None = None


class ModelMergeStarted(BaseModel):
    job: JobPublic = Field(description="The queued merge job (GET /api/jobs/{id} to follow it).")
    version: ModelVersionPublic = Field(
        description="The new `full` version, `merging` until the job succeeds (then `ready` and current)."
    )
