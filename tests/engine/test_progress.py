"""Per-step progress: the ETA arithmetic of one attempt (a resumed run included), the rate limit, and
a real engine run whose `logging_steps` is larger than the run, which still reports every step."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_helpers import base_spec, make_run, run_engine

from loraforge.engine.progress import ProgressClock, eta_seconds


def test_eta_is_the_pace_of_the_steps_timed_so_far():
    assert eta_seconds(step=10, total=100, pace_step=0, pace_t=0.0, now=20.0) == 180.0
    assert eta_seconds(step=100, total=100, pace_step=0, pace_t=0.0, now=20.0) == 0.0
    # Nothing timed yet, or no known total: no ETA rather than a made-up one.
    assert eta_seconds(step=5, total=100, pace_step=5, pace_t=3.0, now=4.0) is None
    assert eta_seconds(step=5, total=0, pace_step=0, pace_t=0.0, now=4.0) is None


def test_eta_after_resume_counts_only_this_attempt():
    # The first attempt did 40 of 100 steps in 4000 s and failed; the second resumes from
    # checkpoint-40 and takes 30 s to start (loading, skipping seen batches), then 2 s a step.
    clock = ProgressClock(interval_s=0.0)
    clock.begin(step=40, tokens=40_000, now=10_000.0)
    first = clock.tick(step=41, total=100, tokens=41_600, now=10_032.0)
    assert first is not None
    assert first["elapsed_s"] == 32.0  # since this attempt began, not since the job was created
    assert first["eta_s"] == 32.0 * 59  # only one step timed: from the train start
    assert first["tokens_per_s"] == 50.0  # 1600 tokens in 32 s
    second = clock.tick(step=42, total=100, tokens=42_600, now=10_034.0)
    assert second is not None
    # From the first step's end on: 2 s a step, 58 left. Neither the first attempt's pace
    # (100 s a step) nor this attempt's start-up changes it.
    assert second["eta_s"] == 116.0
    assert second["tokens_per_s"] == 500.0 and second["progress"] == 0.42
    later = clock.tick(step=50, total=100, tokens=50_600, now=10_050.0)
    assert later is not None and later["eta_s"] == 100.0


def test_progress_is_rate_limited_but_the_first_and_last_steps_always_go_out():
    clock = ProgressClock(interval_s=1.0)
    clock.begin(step=0, tokens=0, now=0.0)
    sent = [s for step in range(1, 11) if (s := clock.tick(step=step, total=10, tokens=step, now=step * 0.3))]
    # Steps every 0.3 s: the first, then one per second, and the last one.
    assert [s["step"] for s in sent] == [1, 5, 9, 10]
    assert sent[-1]["eta_s"] == 0.0 and sent[-1]["progress"] == 1.0


@pytest.mark.slow
def test_engine_reports_every_step_whatever_logging_steps_says(tmp_path: Path, tiny_qwen_dir: Path):
    steps = 6
    run_dir = make_run(tmp_path, "progress", base_spec(tiny_qwen_dir, max_steps=steps, logging_steps=1000))
    res = run_engine(run_dir, LORAFORGE_PROGRESS_INTERVAL_S="0")
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    progress = res.of_type("progress")
    assert [p.step for p in progress] == list(range(1, steps + 1))
    assert all(p.total_steps == steps and p.progress == p.step / steps for p in progress)
    assert all(p.tokens_per_s and p.tokens_per_s > 0 and p.tokens_total for p in progress)
    elapsed = [p.elapsed_s for p in progress]
    assert elapsed == sorted(elapsed) and progress[-1].eta_s == 0.0
    assert all(p.eta_s is not None and p.eta_s >= 0 for p in progress)
    # The loss curve still follows logging_steps: no metric event before the end of the run.
    assert all(m.step == steps for m in res.of_type("metric"))
    # Progress comes between training's start and the end of the run, never after the final status.
    kinds = [e.type for e in res.events]
    assert kinds.index("progress") > kinds.index("status") and kinds[-1] == "status"
