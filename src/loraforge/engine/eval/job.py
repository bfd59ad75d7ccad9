"""An evaluation job: what `python -m loraforge.engine run RUN_DIR` does for `"stage": "evaluation"`.

RUN_DIR is the evaluation's output folder (events.jsonl beside the result files), so the scheduler
follows it as it follows training. A model run evaluates (`runner.run_evaluation`); a pairwise job
judges finished runs against a baseline (`pairwise.run_pairwise`). `seed_samples` copies another
run's answers in first (same generation, other metrics): they are rescored, not generated again.

Endings: `succeeded`; `cancelled` when SIGTERM reached a batch boundary (exit 0; a relaunch in the
same RUN_DIR continues); `failed` after an `error` event, with the CLI's codes (`errors.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loraforge.engine.eval.errors import EvalCancelled, eval_failure, fail
from loraforge.engine.events import EventWriter

SAMPLES_FILE = "samples.jsonl"


def run_eval_job(run_dir: Path, raw: dict[str, Any], writer: EventWriter, stop: Callable[[], bool]) -> int:
    """Run the job; the process exit status (0 also for `cancelled`, 2 for bad input)."""
    from loraforge.engine.eval.jobspec import load_eval_job

    try:
        job, spec = load_eval_job(raw)
        if job.pairwise is not None and job.judge is not None:
            from loraforge.engine.eval.judging import JudgeBackend
            from loraforge.engine.eval.pairwise import run_pairwise

            writer.status("loading_model")
            backend = JudgeBackend(job.judge, spec)
            try:
                run_pairwise(job.pairwise, backend, run_dir, writer, stop)
            finally:
                backend.close()
            return 0
        assert spec is not None  # load_eval_job requires `evaluation` for a model run
        if job.seed_samples:
            seeded = seed_samples(run_dir, Path(job.seed_samples))
            if seeded:
                writer.log(f"{seeded} answers copied from {job.seed_samples}")
        from loraforge.engine.eval.runner import run_evaluation

        run_evaluation(spec, run_dir, writer, provider=job.provider, judge=job.judge, stop=stop)
        return 0
    except EvalCancelled:
        writer.status("cancelled", "stopped at a batch boundary; the results so far are kept")
        return 0
    except Exception as exc:
        failure = eval_failure(exc)
        if failure is None:
            raise  # a bug: run.py classifies it and keeps the traceback
        return fail(writer, *failure)


def seed_samples(run_dir: Path, source: Path) -> int:
    """Copy `source`'s answered samples into RUN_DIR/samples.jsonl unless RUN_DIR has its own; the count.

    Only a fresh RUN_DIR is seeded: a relaunched job already holds the seeds and what followed.
    """
    from loraforge.engine.data.stats import DataError
    from loraforge.engine.eval.results import is_answer, read_records

    target = run_dir / SAMPLES_FILE
    if target.exists():
        return 0
    if not source.is_file():
        raise DataError(f"seed_samples: no such file {str(source)!r}")
    stored = read_records(source)
    records = [stored[i] for i in sorted(stored) if is_answer(stored[i])]
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(SAMPLES_FILE + ".seed")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    tmp.replace(target)
    return len(records)
