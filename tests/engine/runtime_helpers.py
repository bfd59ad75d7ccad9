"""Helpers for engine runtime tests: write a run dir, run the real engine process, read results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loraforge.engine.events import MARKER, Event, LogEvent, parse_line

DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "llamafactory").resolve()


def base_spec(model_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A small CPU LoRA SFT spec on identity.json; tests override what they exercise."""
    spec: dict[str, Any] = {
        "model_name_or_path": str(model_dir),
        "stage": "sft",
        "finetuning_type": "lora",
        "dataset": "identity",
        "dataset_dir": str(DATA),
        "template": "auto",
        "cutoff_len": 128,
        "max_samples": 64,
        "per_device_train_batch_size": 8,
        "learning_rate": 1e-2,
        "lr_scheduler_type": "constant",
        "max_steps": 4,
        "logging_steps": 1,
        "save_steps": 1000,
        "save_every_minutes": None,
        "lora_rank": 8,
        "devices": "cpu",
        "seed": 42,
        "dataloader_num_workers": 0,
    }
    spec.update(overrides)
    return spec


def make_run(tmp: Path, name: str, spec: dict[str, Any]) -> Path:
    run_dir = tmp / name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    return run_dir


@dataclass
class EngineResult:
    rc: int
    stdout: str
    stderr: str
    events: list[Event] = field(default_factory=list)

    def of_type(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.type == kind]

    @property
    def final_status(self) -> str | None:
        statuses = [e.status for e in self.of_type("status")]
        return statuses[-1] if statuses else None

    def losses(self) -> dict[int, float]:
        return {e.step: e.loss for e in self.of_type("metric") if e.loss is not None}

    def explain(self) -> str:
        out, err = self.stdout[-3000:], self.stderr[-3000:]
        return f"rc={self.rc}\n--- stdout tail ---\n{out}\n--- stderr tail ---\n{err}"


def engine_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "CUDA_VISIBLE_DEVICES": "",
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2"),
        }
    )
    env.update(extra)
    return env


def run_engine(run_dir: Path, *, timeout: float = 300, **env: str) -> EngineResult:
    proc = subprocess.run(
        [sys.executable, "-m", "loraforge.engine", "run", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=engine_env(**env),
        check=False,
    )
    events = [
        e for e in (parse_line(x) for x in proc.stdout.splitlines()) if not isinstance(e, LogEvent) or e.seq
    ]
    return EngineResult(proc.returncode, proc.stdout, proc.stderr, events)


def marked_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if MARKER in line]


def trainer_log(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "trainer_log.jsonl"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
