"""Evaluation samples, comparisons of runs and their reports."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from loraforge.api.ids import Id
from loraforge.api.schemas.common import RequestModel, ResponseModel, at_most
from loraforge.services.evaluation.compare import MAX_RUNS, MIN_RUNS

ReportFormat = Literal["html", "md", "csv", "jsonl", "json"]
SampleSort = Literal["index", "regression", "improvement"]


class SampleJudge(BaseModel):
    score: float | None = Field(description="1–10; null when the judge's answer held no score.")
    reason: str
    error: str | None = Field(default=None, description="Why the judge gave no verdict (its request failed).")


class SampleAnswer(ResponseModel):
    run_id: int
    position: int = Field(description="The run's place among the evaluation's models (0: first).")
    model: str
    predict: str | None = Field(description="The generated answer; null while the run has not reached it.")
    scores: dict[str, float] = Field(description="Per-sample scores by totals key (bleu-4, rouge-l, ...).")
    judge: SampleJudge | None = None
    latency_s: float | None
    completion_tokens: int | None
    error: str | None = Field(default=None, description="Why no answer was generated (a provider error).")


class SampleItem(ResponseModel):
    index: int = Field(description="The sample's position in the test set.")
    prompt: str
    label: str = Field(description="The reference answer.")
    answers: list[SampleAnswer] = Field(description="One per run, in model order.")


class SamplePage(ResponseModel):
    items: list[SampleItem]
    total: int
    page: int
    page_size: int
    metric: str | None = Field(description="The per-sample metric sorted and filtered by.")
    baseline: int = Field(description="The baseline run's position.")


class CompareRequest(RequestModel):
    runs: Annotated[list[Id], at_most(MAX_RUNS, "runs"), Field(min_length=MIN_RUNS, max_length=MAX_RUNS)] = (
        Field(description=f"{MIN_RUNS} to {MAX_RUNS} run ids, scored on the same dataset version and split.")
    )
    baseline: Id | None = Field(
        default=None, description="The run deltas are taken against (default: the first)."
    )


class ComparedDatasetVersion(BaseModel):
    id: int
    number: int
    dataset_id: int
    dataset_name: str | None


class ComparedRun(BaseModel):
    run_id: int
    evaluation_id: int
    model: str
    metrics: dict[str, float]
    speed: dict[str, float]
    delta: dict[str, float | None] = Field(description="metric − the baseline's; null where either lacks it.")


class Comparison(BaseModel):
    dataset_version: ComparedDatasetVersion | None
    baseline: int = Field(description="The baseline's run id.")
    metrics: list[str]
    direction: dict[str, Literal["higher", "lower"]] = Field(description="Which way is better, per metric.")
    rows: list[ComparedRun]
    best: dict[str, int] = Field(
        description="The best run id per metric (the first one on a tie; absent when all runs tie)."
    )
