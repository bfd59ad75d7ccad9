"""Creating an evaluation: every input checked (4xx naming the field), models pinned, the test set's
version pinned, one run per model with its cache key, a job per run (or a cached job reused), and
the jobs queued when asked to start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.models import DatasetVersion, Evaluation, EvaluationRun, Job, JobStatus, User
from loraforge.engine.eval.judge import PAIRWISE_FIELDS, SCORE_FIELDS, check_template
from loraforge.engine.eval.spec import LOGIT_METRICS, load_eval_spec
from loraforge.engine.spec_loading import SpecError
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.evaluation import cache, runs
from loraforge.services.evaluation.targets import PROVIDER, Target, resolve
from loraforge.services.jobs import eval_data, eval_request
from loraforge.services.platform import audit
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

MAX_MODELS = 8
JUDGE_MODES = ("single", "pairwise")
OPTION_KEYS = ("max_samples", "case_sensitive", "regex_pattern", "json_schema", "n_shot")


@dataclass
class EvaluationRequest:
    name: str
    models: list[str]
    dataset: int
    metrics: list[str]
    description: str = ""
    dataset_version: int | None = None
    split: str = "all"
    generation: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] | None = None
    shared: bool = False
    start: bool = True
    source_job_id: int | None = None


def _invalid(name: str, message: str) -> InvalidInput:
    return InvalidInput(f"{name}: {message}", code="invalid_evaluation", fields=[FieldIssue(name, message)])


def _check_models(session: Session, settings: Settings, actor: User, models: list[str]) -> list[Target]:
    if not 1 <= len(models) <= MAX_MODELS:
        raise _invalid("models", f"name 1 to {MAX_MODELS} models")
    targets: list[Target] = []
    for i, name in enumerate(models):
        if not isinstance(name, str) or not name.strip():
            raise _invalid(f"models[{i}]", "a model name")
        target = resolve(session, settings=settings, actor=actor, name=name, field=f"models[{i}]")
        if any(t.name == target.name for t in targets):
            raise _invalid(f"models[{i}]", f"{target.name} is listed twice")
        targets.append(target)
    return targets


def _check_split(version: DatasetVersion, split: str) -> None:
    if split not in eval_request.SPLITS:
        raise _invalid("split", f"one of {', '.join(eval_request.SPLITS)}")
    if split == "all":
        return
    splits = ((version.recipe or {}).get("report") or {}).get("splits") or {}
    if not splits.get(eval_data.SPLIT_MARKS[split]):
        raise _invalid(
            "split", f"version {version.number} has no {split} split; preprocess it with a split or use all"
        )


def _check_format(version: DatasetVersion, metrics: list[str]) -> None:
    """Questions with options score only by multiple choice, and multiple choice needs questions."""
    questions = version.format == "multiple_choice"
    if questions and metrics != ["multiple_choice"]:
        raise _invalid(
            "metrics", f"version {version.number} holds multiple-choice questions: use multiple_choice"
        )
    if not questions and "multiple_choice" in metrics:
        raise _invalid(
            "metrics",
            f"multiple_choice needs a multiple-choice dataset; version {version.number} is {version.format}",
        )


def _check_options(options: dict[str, Any], metrics: list[str]) -> dict[str, Any]:
    """The metric options, checked by the engine's own evaluation schema (names mapped to `options.*`)."""
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise _invalid(f"options.{unknown[0]}", "unknown option")
    kept = {k: v for k, v in options.items() if v is not None}
    scored = [m for m in metrics if m != "judge"] or ["exact_match"]
    candidate = {
        "model_name_or_path": "placeholder",
        "eval_dataset": ["placeholder.jsonl"],
        "metrics": scored,
        **kept,
    }
    try:
        load_eval_spec(candidate)
    except SpecError as exc:
        fields = [
            FieldIssue("metrics" if p.key == "metrics" else f"options.{p.key}", p.message)
            for p in exc.problems
        ]
        names = ", ".join(f.field for f in fields)
        raise InvalidInput(
            f"invalid evaluation options: {names}", code="invalid_evaluation", fields=fields
        ) from None
    return kept


def _check_judge(
    session: Session,
    settings: Settings,
    actor: User,
    judge: dict[str, Any] | None,
    metrics: list[str],
    n_models: int,
) -> dict[str, Any] | None:
    if judge is None:
        if "judge" in metrics:
            raise _invalid("judge", "the judge metric needs a judge model")
        return None
    mode = judge.get("mode", "single")
    if mode not in JUDGE_MODES:
        raise _invalid("judge.mode", "single or pairwise")
    if mode == "single" and "judge" not in metrics:
        raise _invalid("metrics", "a single-mode judge scores through the judge metric: add judge")
    if mode == "pairwise" and n_models < 2:
        raise _invalid("judge.mode", "pairwise judging needs at least two models")
    if mode == "pairwise" and "judge" in metrics:
        raise _invalid("metrics", "pairwise judging compares the answers after the runs: leave judge out")
    name = judge.get("model")
    if not isinstance(name, str) or not name.strip():
        raise _invalid("judge.model", "a model name")
    target = resolve(session, settings=settings, actor=actor, name=name, field="judge.model")
    prompt = judge.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise _invalid("judge.prompt", "a text")
    if prompt:
        try:  # the engine's own placeholder rule ({question}, {reference}, {answer} / {answer_a}...)
            check_template(prompt, PAIRWISE_FIELDS if mode == "pairwise" else SCORE_FIELDS)
        except ValueError as exc:
            raise _invalid("judge.prompt", str(exc)) from None
    return {"model": target.name, "mode": mode, "prompt": prompt or None}


def create_evaluation(
    session: Session, *, settings: Settings, actor: User, request: EvaluationRequest, ip: str | None
) -> Evaluation:
    """Check, pin and create; queue the jobs with `request.start`. The caller wakes the scheduler."""
    targets = _check_models(session, settings, actor, request.models)
    version = eval_request.resolve_test_set(
        session, actor=actor, dataset=request.dataset, version=request.dataset_version
    )
    _check_split(version, request.split)
    metrics = eval_request.check_metrics(request.metrics)
    _check_format(version, metrics)
    logits = sorted(LOGIT_METRICS & set(metrics))
    for i, target in enumerate(targets):
        if logits and target.kind == PROVIDER:
            raise _invalid(
                f"models[{i}]", f"{', '.join(logits)} need the model's logits; a provider returns text"
            )
    generation = eval_request.check_generation(request.generation)
    options = _check_options(request.options, metrics)
    judge = _check_judge(session, settings, actor, request.judge, metrics, len(targets))
    evaluation = Evaluation(
        owner_id=actor.id, name=request.name, description=request.description, dataset_id=version.dataset_id,
        dataset_version_id=version.id, split=request.split, metrics=metrics, generation=generation,
        options=options, shared=request.shared, source_job_id=request.source_job_id,
    )  # fmt: skip
    if judge is not None:  # never an explicit None: a JSON column would store 'null', not NULL
        evaluation.judge = judge
    session.add(evaluation)
    session.flush()
    jobs: list[Job] = []
    for position, target in enumerate(targets):
        jobs.extend(_add_run(session, settings, actor, evaluation, position, target, ip))
    audit.record(
        session, action=AuditAction.evaluation_created, actor=actor, target_type="evaluation",
        target_id=evaluation.id, ip=ip,
        details={"name": evaluation.name, "models": [t.name for t in targets], "version_id": version.id},
    )  # fmt: skip
    if request.start:
        for job in jobs:
            runs.queue(session, settings=settings, actor=actor, job=job, ip=ip)
        runs.maybe_queue_judging(session, settings, evaluation)  # every run was cached: judge now
        audit.record(
            session, action=AuditAction.evaluation_started, actor=actor, target_type="evaluation",
            target_id=evaluation.id, ip=ip,
        )  # fmt: skip
    session.commit()
    return evaluation


def _add_run(
    session: Session, settings: Settings, actor: User, evaluation: Evaluation, position: int, target: Target,
    ip: str | None,
) -> list[Job]:  # fmt: skip
    """The run of one model: a cached job reused (no new job), or a new draft job (seeded with earlier
    answers when only the scoring differs)."""
    parts = (target.identity, evaluation.dataset_version_id, evaluation.split, evaluation.generation)
    key = cache.cache_key(*parts, evaluation.options, evaluation.metrics, evaluation.judge)
    run = EvaluationRun(
        evaluation_id=evaluation.id, owner_id=actor.id, position=position, model_name=target.name,
        model_kind=target.kind, model_version_id=target.model_version_id, provider_id=target.provider_id,
        cache_key=key,
    )  # fmt: skip
    hit = cache.succeeded_run(session, owner_id=actor.id, key=key)
    if hit is not None:
        run.job_id, run.cached = hit.job_id, True
        if hit.results is not None:
            run.results = dict(hit.results)
        session.add(run)
        session.flush()
        return []
    session.add(run)
    session.flush()
    seed = cache.seed_job(session, owner_id=actor.id, key=cache.generation_key(*parts, evaluation.options))
    job = runs.run_job(
        session, settings=settings, actor=actor, evaluation=evaluation, run=run, ip=ip, seed=seed
    )
    return [job] if job.status == JobStatus.draft.value else []
