"""Resident memory of an SFT run with a validation split: long rows (cutoff_len 2048), the tiny demo
model, evaluation every few steps. Prints one JSON object.

The engine's peak comes from the kernel (`ru_maxrss` of the waited-for child, so nothing between two
samples is missed); the course over the run comes from the run's own `resource` events (process tree,
sampled every 0.25 s): RSS at the first training sample, the highest sample while evaluating, and the
last sample before saving.

`--src DIR` runs the engine from another source tree (e.g. `git archive HEAD src | tar -x -C /tmp/old`)
to measure a previous version on the same data.

Usage: .venv/bin/python bench/engine_memory.py [--steps 60] [--eval-batch 8] [--src /tmp/old/src]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WIKI = (REPO / ".." / "shared" / "datasets" / "llamafactory" / "wiki_demo.txt").resolve()


def long_rows(path: Path, rows: int, seed: int = 0) -> None:
    """Alpaca rows whose answers are wiki passages of 100..1500 words (up to ~cutoff_len tokens)."""
    words = WIKI.read_text(encoding="utf-8").split()
    rng = random.Random(seed)
    data = []
    for i in range(rows):
        n = rng.randint(100, 1500)
        start = rng.randint(0, len(words) - n - 1)
        data.append(
            {"instruction": f"Write passage {i}.", "input": "", "output": " ".join(words[start : start + n])}
        )
    path.mkdir(parents=True, exist_ok=True)
    (path / "long.json").write_text(json.dumps(data), encoding="utf-8")
    (path / "dataset_info.json").write_text(
        json.dumps({"long": {"file_name": "long.json"}}), encoding="utf-8"
    )


def run(model: Path, data: Path, run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    run_dir.mkdir(parents=True)
    spec = {
        "model_name_or_path": str(model),
        "stage": "sft",
        "finetuning_type": "lora",
        "dataset": "long",
        "dataset_dir": str(data),
        "template": "auto",
        "cutoff_len": 2048,
        "val_size": 0.1,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": args.eval_batch,
        "max_steps": args.steps,
        "logging_steps": args.eval_every,
        "eval_steps": args.eval_every,
        "save_strategy": "no",
        "save_every_minutes": None,
        "devices": "cpu",
        "dataloader_num_workers": 0,
        "resource_interval_seconds": 0.25,
        "seed": 42,
    }
    (run_dir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve())
    started = time.monotonic()
    with (run_dir / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loraforge.engine", "run", str(run_dir)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit((run_dir / "stderr.txt").read_text(errors="replace")[-3000:])
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines() if x.strip()]
    phase, samples = "", []
    for e in events:
        if e["type"] == "status":
            phase = e["status"]
        elif e["type"] == "resource":
            samples.append((phase, float(e["rss_mb"])))
    training = [r for p, r in samples if p == "training"]
    evaluating = [r for p, r in samples if p == "evaluating"]
    evals = [e["eval_loss"] for e in events if e["type"] == "eval"]
    return {
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "rss_first_training_mb": training[0] if training else None,
        "rss_max_training_mb": max(training) if training else None,
        "rss_max_evaluating_mb": max(evaluating) if evaluating else None,
        "rss_last_training_mb": training[-1] if training else None,
        "evaluations": len(evals),
        "last_eval_loss": round(evals[-1], 5) if evals else None,
        "wall_s": round(time.monotonic() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--eval-batch", type=int, default=8)
    parser.add_argument("--rows", type=int, default=300, help="dataset rows; 10 %% are the validation split")
    parser.add_argument("--src", help="run the engine from this source tree (PYTHONPATH)")
    args = parser.parse_args()

    from loraforge.engine.demo_model import cached_demo_model

    model = cached_demo_model(REPO / ".cache" / "demo-models", arch="qwen2", size="tiny")
    with tempfile.TemporaryDirectory(prefix="engine-memory-") as tmp:
        long_rows(Path(tmp) / "data", args.rows)
        result = run(model, Path(tmp) / "data", Path(tmp) / "run", args)
    result.update(
        steps=args.steps, eval_every=args.eval_every, eval_batch=args.eval_batch, src=args.src or "this tree"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
