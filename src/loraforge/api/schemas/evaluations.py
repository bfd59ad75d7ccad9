"""Evaluations: create, edit, read and list; a model version's scores."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from loraforge.api.ids import Id
from loraforge.api.schemas.common import Name, RequestModel, SpecObject, at_most
from loraforge.services.jobs.eval_request import MAX_NEW_TOKENS, MAX_SAMPLES

MetricName = Literal[
    "bleu", "rouge", "sacrebleu", "chrf", "exact_match", "contains", "regex", "valid_json",
    "perplexity", "multiple_choice", "judge",
]  # fmt: skip
EvaluationStatus = Literal[
    "draft", "queued", "starting", "running", "stopping", "succeeded", "failed", "cancelled", "stopped"
]
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Description = Annotated[str, StringConstraints(max_length=10_000)]


class EvaluationGeneration(RequestModel):
    max_new_tokens: int = Field(default=256, ge=1, le=MAX_NEW_TOKENS, description="Longest answer generated.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="0: greedy decoding.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)


class EvaluationOptions(RequestModel):
    max_samples: int | None = Field(default=None, ge=1, le=MAX_SAMPLES, description="At most this many rows.")
    case_sensitive: bool | None = Field(default=None, description="exact_match / contains compare case.")
    regex_pattern: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        default=None, description="The pattern of the `regex` metric."
    )
    json_schema: SpecObject | None = Field(default=None, description="`valid_json` also checks this schema.")
    n_shot: int | None = Field(
        default=None, ge=0, le=32, description="Multiple choice: solved examples first."
    )


class EvaluationJudge(RequestModel):
    model: ModelName = Field(
        description="The judge: `demo-tiny`, a registered model or `<provider>/<model>`."
    )
    mode: Literal["single", "pairwise"] = Field(
        default="single",
        description="single: a 1–10 score per answer (the `judge` metric); pairwise: A vs B in both "
        "orders against the first model, once every model's run succeeded.",
    )
    prompt: Annotated[str, StringConstraints(max_length=20_000)] | None = None


class EvaluationCreate(RequestModel):
    name: Name
    description: Description = ""
    models: Annotated[list[ModelName], at_most(8, "models")] = Field(
        min_length=1,
        max_length=8,
        description="1–8 distinct models as /v1 names: `demo-tiny`, a registered model (`<name>` pins its "
        "current version as `<name>@v<n>`), or a provider model `<provider>/<model>`.",
    )
    dataset: Id = Field(description="The test set: a dataset id.")
    dataset_version: Id | None = Field(
        default=None, description="A version of it (default: its current one)."
    )
    split: Literal["all", "test", "train"] = Field(
        default="all", description="Which rows: all, or the test/train split of a preprocessed version."
    )
    metrics: Annotated[list[MetricName], at_most(11, "metrics")] = Field(min_length=1, max_length=11)
    generation: EvaluationGeneration | None = None
    options: EvaluationOptions | None = None
    judge: EvaluationJudge | None = None
    shared: bool = Field(default=False, description="Readable (never changeable) by every user.")
    start: bool = Field(default=True, description="Queue the jobs now (otherwise a draft).")

    @field_validator("models")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a model is listed twice")
        return value


class EvaluationUpdate(RequestModel):
    name: Name | None = None
    description: Description | None = None
    shared: bool | None = None


class EvaluationRunPublic(BaseModel):
    id: int
    position: int = Field(description="Order of the models; 0 is the default baseline.")
    model: str = Field(description="As /v1 names it; registered models pinned as `<name>@v<n>`.")
    model_kind: Literal["demo", "registered", "provider"]
    model_id: int | None
    model_version_id: int | None
    job_id: int | None
    job_status: EvaluationStatus | None
    cached: bool = Field(description="Reused the job of an identical earlier run (no new generation).")
    progress: float | None = Field(description="0..1 of the run's samples done.")
    eta_s: float | None = Field(description="Seconds left, from the engine's latest progress event.")
    error: dict[str, Any] | None
    results: dict[str, Any] | None = Field(
        description="Once the job succeeded: `metrics` ({key: number}), `speed`, `test_set`."
    )


class NamedRef(BaseModel):
    id: int
    name: str


class VersionRef(BaseModel):
    id: int
    number: int


class EvaluationPublic(BaseModel):
    id: int
    name: str
    description: str
    owner: str
    owner_id: int
    dataset: NamedRef | None
    dataset_version: VersionRef | None
    split: str
    metrics: list[str]
    generation: dict[str, Any]
    options: dict[str, Any]
    judge: dict[str, Any] | None
    shared: bool
    source_job_id: int | None = Field(description="The training job whose before/after this is.")
    status: EvaluationStatus
    progress: float | None
    runs: list[EvaluationRunPublic]
    judge_job_id: int | None
    judge_results: dict[str, Any] | None = Field(
        description="Pairwise judging: {baseline, vs: [{model, win, tie, loss, n}]}."
    )
    created_at: datetime
    updated_at: datetime


class EvaluationPage(BaseModel):
    items: list[EvaluationPublic]
    total: int
    page: int
    page_size: int


class ScoreBase(BaseModel):
    model: str
    run_id: int
    metrics: dict[str, float]


class VersionScore(BaseModel):
    evaluation_id: int
    evaluation_name: str
    dataset: NamedRef | None
    dataset_version: VersionRef | None
    run_id: int
    metrics: dict[str, float]
    base: ScoreBase | None = Field(description="The version's base model in the same evaluation, if scored.")
    delta: dict[str, float] | None = Field(description="This version − base, per metric both have.")
    created_at: datetime


class VersionScores(BaseModel):
    items: list[VersionScore]
