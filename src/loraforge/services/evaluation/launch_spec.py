"""RUN_DIR/spec.json of an evaluation job, built when the scheduler launches it (`build`, registered by
the app as the `evaluation` stage of `services.jobs.admission`).

Everything that names a file or a secret is resolved here, at launch, from ids: model folders (the
owner's access checked again), the provider's URL (the outbound policy checked again) and its key
(into the engine's environment only: `LORAFORGE_EVAL_PROVIDER_KEY` / `LORAFORGE_EVAL_JUDGE_KEY`), the
test set written from the pinned dataset version into RUN_DIR/data/test.jsonl, the samples of other
jobs (pairwise judging, reused answers) by their jobs' run directories. The evaluation's output
directory is the run directory itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from loraforge.datastore import choice, paths
from loraforge.db.models import DatasetVersion, Evaluation, EvaluationRun, Job, User
from loraforge.errors import Forbidden
from loraforge.services.evaluation import runs as run_jobs
from loraforge.services.evaluation.access import runs_of
from loraforge.services.evaluation.targets import Loadable, loadable
from loraforge.services.jobs import eval_data
from loraforge.services.jobs.access import job_run_dir
from loraforge.services.jobs.admission import StageLaunch
from loraforge.settings import Settings

PROVIDER_KEY_ENV = "LORAFORGE_EVAL_PROVIDER_KEY"
JUDGE_KEY_ENV = "LORAFORGE_EVAL_JUDGE_KEY"
SAMPLES_FILE = "samples.jsonl"
QUESTIONS_FILE = "data/questions.jsonl"
_OPTION_KEYS = ("max_samples", "case_sensitive", "regex_pattern", "json_schema", "n_shot")


def _test_set(
    settings: Settings, evaluation: Evaluation, version: DatasetVersion, run_dir: Path
) -> dict[str, Any]:
    """The eval_dataset keys: the version's rows of the split, or its question file for multiple choice."""
    normalized = paths.normalized_path(version.dataset_id, version.id, data_dir=settings.data_dir)
    if "multiple_choice" in (evaluation.metrics or []):
        # The normalized rows, not the upload: ingest already mapped the columns (问题/答案 …), read
        # index answers as letters and left out the rows it refused; the split applies as for text sets.
        target = run_dir / QUESTIONS_FILE
        split = eval_data.SPLIT_MARKS.get(evaluation.split)
        if not choice.write_question_file(normalized, target, split=split):
            raise RuntimeError(f"the {evaluation.split} questions of the dataset version are empty")
        return {"eval_dataset": [str(target)]}
    keys = eval_data.write_test_rows(normalized, run_dir, version.format, evaluation.split)
    if not keys.pop("rows"):
        raise RuntimeError(f"the {evaluation.split} rows of the dataset version are empty")
    return keys


def _judge_block(
    session: Session, settings: Settings, owner: User, evaluation: Evaluation, env: dict[str, str]
) -> dict[str, Any] | None:
    judge = evaluation.judge
    if not judge:
        return None
    found = loadable(session, settings=settings, owner=owner, name=str(judge.get("model")))
    if found.api_key:
        env[JUDGE_KEY_ENV] = found.api_key
    return {"mode": judge.get("mode", "single"), "prompt": judge.get("prompt"), "provider": found.provider,
            "local": found.local}  # fmt: skip


def _evaluation_block(
    evaluation: Evaluation, model: Loadable, name: str, test_set: dict[str, Any], run_dir: Path, num_gpus: int
) -> dict[str, Any]:
    generation = evaluation.generation or {}
    local = model.local or {"model_name_or_path": name, "adapter_name_or_path": None, "template": "auto"}
    block: dict[str, Any] = {
        **local,
        **test_set,
        "metrics": list(evaluation.metrics or []),
        "max_new_tokens": generation.get("max_new_tokens", 256),
        "temperature": generation.get("temperature", 0.0),
        "top_p": generation.get("top_p", 1.0),
        "output_dir": str(run_dir),
        "use_cpu": num_gpus == 0,  # no GPU handed out: CUDA is hidden from the engine anyway
    }
    block.update({k: v for k, v in (evaluation.options or {}).items() if k in _OPTION_KEYS and v is not None})
    if model.provider is not None:
        block["model_name_or_path"] = model.provider["model"]
        block.pop("adapter_name_or_path", None)
    return block


def _samples_of(session: Session, settings: Settings, job_id: int | None) -> str | None:
    job = session.get(Job, job_id) if job_id is not None else None
    if job is None:
        return None
    path = job_run_dir(settings, job) / SAMPLES_FILE
    return str(path) if path.is_file() else None


def build(session: Session, settings: Settings, job: Job, run_dir: Path, num_gpus: int) -> StageLaunch:
    """The engine spec of an evaluation job (a model's run, or the pairwise judging)."""
    spec = job.spec or {}
    evaluation = session.get(Evaluation, spec.get(run_jobs.EVALUATION_KEY))
    owner = session.get(User, job.owner_id)
    if evaluation is None or owner is None:
        raise RuntimeError("the evaluation of this job no longer exists")
    if owner.disabled:
        raise Forbidden("the job's owner account is disabled", code="owner_disabled")
    version = (
        session.get(DatasetVersion, evaluation.dataset_version_id) if evaluation.dataset_version_id else None
    )
    if version is None:
        raise RuntimeError("the pinned dataset version no longer exists")
    env: dict[str, str] = {}
    if spec.get(run_jobs.PAIRWISE_KEY):
        # The judging job reads the runs' answers: no model of its own besides the judge.
        listed = [
            {"name": r.model_name, "samples": _samples_of(session, settings, r.job_id)}
            for r in runs_of(session, evaluation)
        ]
        if any(item["samples"] is None for item in listed):
            raise RuntimeError("a model's answers are gone: run the evaluation again")
        engine_spec: dict[str, Any] = {
            "stage": "evaluation", "evaluation": None, "provider": None,
            "judge": _judge_block(session, settings, owner, evaluation, env),
            "pairwise": {"runs": listed, "baseline": 0}, "seed_samples": None,
        }  # fmt: skip
        return StageLaunch(spec=engine_spec, env=env, checkpoint_resume=False)
    run = session.get(EvaluationRun, spec.get(run_jobs.RUN_KEY))
    if run is None:
        raise RuntimeError("the evaluation run of this job no longer exists")
    model = loadable(session, settings=settings, owner=owner, name=run.model_name)
    if model.api_key:
        env[PROVIDER_KEY_ENV] = model.api_key
    test_set = _test_set(settings, evaluation, version, run_dir)
    block = _evaluation_block(evaluation, model, run.model_name, test_set, run_dir, num_gpus)
    engine_spec = {
        "stage": "evaluation",
        "evaluation": block,
        "provider": model.provider,
        # Model runs of a pairwise evaluation only generate: the judging job gets the judge.
        "judge": _judge_block(session, settings, owner, evaluation, env)
        if "judge" in block["metrics"]
        else None,
        "pairwise": None,
        "seed_samples": _samples_of(session, settings, spec.get(run_jobs.SEED_KEY)),
    }
    return StageLaunch(spec=engine_spec, env=env, checkpoint_resume=False)
