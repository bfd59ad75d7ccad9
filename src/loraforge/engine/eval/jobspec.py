"""The platform's evaluation job: RUN_DIR/spec.json with `"stage": "evaluation"`.

    {"stage": "evaluation",
     "evaluation": {...EvalSpec...},                 # the model run (absent for a pairwise judge job)
     "provider": {"base_url", "model"} | null,       # generate over HTTP instead of loading a model
     "judge": {"mode", "prompt", "provider" | "local"} | null,
     "pairwise": {"runs": [{"name", "samples"}], "baseline": 0} | null,
     "seed_samples": "/abs/samples.jsonl" | null}

API keys never appear here: they come from the environment (`PROVIDER_KEY_ENV`, `JUDGE_KEY_ENV`).
Problems are reported as `EvalSpecError` naming each key (`evaluation.metrics`, `judge.prompt`, ...).

Torch-free.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from loraforge.engine.eval.judge import PAIRWISE_FIELDS, SCORE_FIELDS, check_template
from loraforge.engine.eval.spec import LOGIT_METRICS, EvalSpec, EvalSpecError, load_eval_spec
from loraforge.engine.spec_loading import FieldProblem

PROVIDER_KEY_ENV = "LORAFORGE_EVAL_PROVIDER_KEY"
JUDGE_KEY_ENV = "LORAFORGE_EVAL_JUDGE_KEY"


class ProviderRef(BaseModel):
    """An OpenAI-compatible endpoint: `base_url` ends where `/chat/completions` is appended (…/v1)."""

    model_config = ConfigDict(extra="forbid")
    base_url: str = Field(min_length=1, max_length=2000)
    model: str = Field(min_length=1, max_length=300)

    @field_validator("base_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")


class LocalJudge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_name_or_path: str = Field(min_length=1)
    adapter_name_or_path: str | None = None
    template: str = "auto"


class JudgeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["single", "pairwise"] = "single"
    prompt: str | None = Field(None, max_length=20000)
    provider: ProviderRef | None = None
    local: LocalJudge | None = None
    max_new_tokens: int = Field(256, ge=16, le=4096)


class PairwiseRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=300)
    samples: str = Field(min_length=1)


class PairwiseSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runs: list[PairwiseRun] = Field(min_length=2, max_length=8)
    baseline: int = Field(0, ge=0)


class EvalJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: Literal["evaluation"]
    evaluation: dict[str, Any] | None = None
    provider: ProviderRef | None = None
    judge: JudgeSpec | None = None
    pairwise: PairwiseSpec | None = None
    seed_samples: str | None = None


def load_eval_job(raw: dict[str, Any]) -> tuple[EvalJob, EvalSpec | None]:
    """The job and its evaluation spec (None for a pairwise judge job); EvalSpecError names every problem."""
    try:
        job = EvalJob.model_validate(raw)
    except ValidationError as exc:
        problems = [
            FieldProblem(key=".".join(str(p) for p in err["loc"]) or "<root>", message=_msg(err))
            for err in exc.errors()
        ]
        raise EvalSpecError(problems, "spec.json") from None
    problems = _judge_problems(job)
    spec: EvalSpec | None = None
    if job.pairwise is not None:
        if job.pairwise.baseline >= len(job.pairwise.runs):
            problems.append(FieldProblem(key="pairwise.baseline", message="not a position in pairwise.runs"))
        if job.judge is None or job.judge.mode != "pairwise":
            problems.append(
                FieldProblem(key="judge", message="a pairwise job needs a judge with mode pairwise")
            )
    elif job.evaluation is None:
        problems.append(FieldProblem(key="evaluation", message="required"))
    if job.evaluation is not None:  # a pairwise job may carry one too: device and concurrency
        try:
            spec = load_eval_spec(job.evaluation)
        except EvalSpecError as exc:
            problems += [FieldProblem(key=f"evaluation.{p.key}", message=p.message) for p in exc.problems]
        if spec is not None:
            problems += _run_problems(job, spec)
    if problems:
        raise EvalSpecError(problems, "spec.json")
    return job, spec


def _judge_problems(job: EvalJob) -> list[FieldProblem]:
    judge = job.judge
    if judge is None:
        return []
    problems = []
    if (judge.provider is None) == (judge.local is None):
        problems.append(
            FieldProblem(key="judge", message="name exactly one of judge.provider and judge.local")
        )
    if judge.prompt is not None:
        fields = PAIRWISE_FIELDS if judge.mode == "pairwise" else SCORE_FIELDS
        try:
            check_template(judge.prompt, fields)
        except ValueError as exc:
            problems.append(FieldProblem(key="judge.prompt", message=str(exc)))
    return problems


def _run_problems(job: EvalJob, spec: EvalSpec) -> list[FieldProblem]:
    problems = []
    if job.provider is not None:
        logits = sorted(LOGIT_METRICS & set(spec.metrics))
        if logits:
            problems.append(
                FieldProblem(
                    key="evaluation.metrics",
                    message=f"{', '.join(logits)} need the model's logits; a provider model returns text",
                )
            )
    # In pairwise mode the runs only generate; the pairwise job judges them afterwards.
    if "judge" in spec.metrics and job.judge is None:
        problems.append(FieldProblem(key="judge", message="the judge metric needs a judge block"))
    return problems


def _msg(err: Any) -> str:
    return "required" if err["type"] == "missing" else str(err["msg"]).removeprefix("Value error, ")
