"""`/v1/fine_tuning/jobs`: the create request and the job, event and checkpoint objects."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from loraforge.api.openai.schemas.common import ListPage
from loraforge.api.schemas.common import SpecObject

Auto = Literal["auto"]
MetadataKey = Annotated[str, StringConstraints(max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]


# ---- fine-tuning jobs: request ----------------------------------------------------------------------


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_epochs: Auto | Annotated[int, Field(ge=1, le=50)] | None = Field(
        default=None, description='Epochs; "auto" = 3.'
    )
    batch_size: Auto | Annotated[int, Field(ge=1, le=256)] | None = Field(
        default=None, description='Per-device batch size; "auto" = 4.'
    )
    learning_rate_multiplier: Auto | Annotated[float, Field(gt=0, le=100)] | None = Field(
        default=None, description='Learning rate = 1e-4 × this; "auto" = 1.'
    )
    beta: Auto | Annotated[float, Field(gt=0, le=2)] | None = Field(
        default=None, description='DPO only: strength of the preference term; "auto" = 0.1.'
    )


class MethodParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: Hyperparameters | None = None


class Method(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: MethodParams | None = None
    dpo: MethodParams | None = None
    reinforcement: dict[str, Any] | None = None


class FineTuningJobCreate(BaseModel):
    """OpenAI's `fine_tuning.jobs.create` body, plus `loraforge_spec` (send it with `extra_body`)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        min_length=1, max_length=300, description="demo-tiny, a registered model, or a hub id."
    )
    training_file: str = Field(min_length=1, max_length=64, description='A "fine-tune" file id.')
    validation_file: str | None = Field(default=None, max_length=64)
    suffix: str | None = Field(default=None, max_length=64)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    # OpenAI's own limits on metadata: 16 pairs, keys of 64 and values of 512 characters.
    metadata: dict[MetadataKey, MetadataValue] | None = Field(default=None, max_length=16)
    hyperparameters: Hyperparameters | None = Field(default=None, description="Legacy; prefer method.")
    method: Method | None = None
    integrations: list[dict[str, Any]] | None = Field(
        default=None, max_length=16, description="Not supported: must be empty."
    )
    loraforge_spec: SpecObject | None = Field(
        default=None,
        description="LoRAForge job spec keys merged over the derived spec (e.g. max_steps, cutoff_len).",
    )


# ---- fine-tuning jobs: responses ----------------------------------------------------------------------


class FineTuningError(BaseModel):
    code: str
    message: str
    param: str | None = None


class FineTuningJob(BaseModel):
    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    finished_at: int | None = None
    model: str
    fine_tuned_model: str | None = None
    organization_id: str
    result_files: list[str] = Field(default_factory=list)
    status: Literal["validating_files", "queued", "running", "succeeded", "failed", "cancelled"]
    validation_file: str | None = None
    training_file: str
    hyperparameters: dict[str, Any]
    method: dict[str, Any] | None = None
    trained_tokens: int | None = None
    error: FineTuningError | None = None
    seed: int
    metadata: dict[str, str] | None = None
    user_provided_suffix: str | None = None
    estimated_finish: int | None = None
    integrations: list[dict[str, Any]] = Field(default_factory=list)


class FineTuningJobList(ListPage[FineTuningJob]):
    pass


class FineTuningJobEvent(BaseModel):
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    id: str
    created_at: int
    level: Literal["info", "warn", "error"]
    message: str
    data: dict[str, Any] | None = None
    type: Literal["message", "metrics"] = "message"


class FineTuningJobEventList(ListPage[FineTuningJobEvent]):
    pass


class FineTuningJobCheckpoint(BaseModel):
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    id: str
    created_at: int
    fine_tuned_model_checkpoint: str
    step_number: int
    metrics: dict[str, Any]
    fine_tuning_job_id: str


class FineTuningJobCheckpointList(ListPage[FineTuningJobCheckpoint]):
    first_id: str | None = None
    last_id: str | None = None
