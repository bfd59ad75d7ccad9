"""Checkpoints every M minutes, independent of save_steps ("every N steps and every M minutes")."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_helpers import base_spec, make_run, run_engine


@pytest.mark.slow
def test_time_based_checkpoints_without_step_checkpoints(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    # save_steps is far beyond max_steps, so every checkpoint but the last comes from the clock:
    # 0.0005 minutes (30 ms) elapses between any two optimizer steps on this model.
    spec = base_spec(tiny_qwen_dir, max_steps=6, save_steps=1000, save_every_minutes=0.0005)
    run_dir = make_run(tmp_path, "timed", spec)
    result = run_engine(run_dir)
    assert result.final_status == "succeeded", result.explain()

    saved_steps = sorted(e.step for e in result.of_type("checkpoint"))
    assert len(saved_steps) >= 3, saved_steps
    assert any(step < 6 for step in saved_steps), "no checkpoint before the last step"
    on_disk = sorted(int(p.name.split("-")[1]) for p in (run_dir / "checkpoints").glob("checkpoint-*"))
    assert on_disk == saved_steps
    for step in saved_steps:
        assert (run_dir / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").is_file()


@pytest.mark.slow
def test_no_time_based_checkpoints_when_disabled(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    spec = base_spec(tiny_qwen_dir, max_steps=4, save_steps=1000, save_every_minutes=None)
    run_dir = make_run(tmp_path, "untimed", spec)
    result = run_engine(run_dir)
    assert result.final_status == "succeeded", result.explain()
    assert all(e.step == 4 for e in result.of_type("checkpoint"))
