"""Request and response bodies of exports (`/api/exports`, `/api/models/versions/{id}/exports`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, StringConstraints

from loraforge.api.schemas.common import RequestModel
from loraforge.api.schemas.models import ModelVersionPublic

ExportFormat = Literal["gguf", "gguf_lora", "ollama", "onnx", "merged"]
Quantization = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16)]


class ExportCreate(RequestModel):
    format: ExportFormat = Field(
        description="gguf (llama.cpp, LM Studio), gguf_lora (an adapter for `llama.cpp --lora`; from a LoRA "
        "version), ollama (GGUF + Modelfile), onnx (ONNX Runtime, CPU), merged (safetensors; from a LoRA "
        "version)."
    )
    quantization: Quantization | None = Field(
        default=None,
        description="gguf/ollama: f32, f16, bf16, q8_0, q4_0 (q4_k_m, q5_k_m, q6_k where llama.cpp's "
        "quantizer is installed); gguf_lora: f32, f16, q8_0; onnx: fp32, int4; merged: none. Default: "
        "the format's default (GET /api/exports/formats).",
    )
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = (
        Field(
            default=None,
            description="The model name in the Ollama bundle and the commands; default `<model>-v<number>`.",
        )
    )


class ExportStarted(BaseModel):
    job_id: int = Field(description="The queued export job (GET /api/jobs/{id}, its events and logs).")
    version: ModelVersionPublic = Field(
        description="The new version, `exporting` until the job succeeds (then `ready`; never current)."
    )


class QuantizationChoice(BaseModel):
    name: str
    available: bool
    reason: str | None = Field(description="Why it cannot be exported here (when unavailable).")


class FormatChoice(BaseModel):
    name: ExportFormat
    available: bool
    reason: str | None = Field(description="Why the format cannot be exported here (when unavailable).")
    needs_adapter: bool = Field(description="Made from a LoRA adapter version only.")
    default_quantization: str | None
    quantizations: list[QuantizationChoice]


class ExportFormats(BaseModel):
    formats: list[FormatChoice]


class ExportEstimate(BaseModel):
    format: ExportFormat
    quantization: str | None
    file_bytes: int | None = Field(description="Estimated size of the exported files.")
    memory_bytes: int | None = Field(
        description="Estimated memory to run it: the weights plus the KV cache for `context_length`."
    )
    context_length: int | None
    param_count: int | None = Field(description="Parameters converted (the adapter's alone for gguf_lora).")
    note: str | None = None


class PushCreate(RequestModel):
    hub: Literal["huggingface", "modelscope"] = Field(description="Where to push.")
    repo_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] = Field(
        description="`owner/name` on the hub; created (private unless `private` is false) when absent, "
        "given a new commit when it exists."
    )
    token: SecretStr = Field(
        min_length=1, max_length=400, json_schema_extra={"writeOnly": True},
        description="An access token with write permission on the hub. Used for this push only: never "
        "stored, logged or returned.",
    )  # fmt: skip
    private: bool = Field(default=True, description="Visibility of a repository the push creates.")


class PushResult(BaseModel):
    url: str = Field(description="The repository's page on the hub.")
    commit_url: str | None
    revision: str | None = Field(description="The commit the push made.")
    hub: Literal["huggingface", "modelscope"]
    repo_id: str
    private: bool
    files: int = Field(description="Files uploaded.")
