"""Packing vs padded batches: tokens/s and peak RSS of the engine on a skewed-length mix
(identity + alpaca_en_demo) on the `small` demo model. Prints one JSON object.

Usage: .venv/bin/python bench/packing.py [--steps 20] [--max-samples 300]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "datasets" / "llamafactory").resolve()


def run(model: Path, work: Path, name: str, steps: int, max_samples: int, **extra: object) -> dict:
    from loraforge.engine.events import parse_line

    run_dir = work / name
    run_dir.mkdir()
    spec = {
        "model_name_or_path": str(model),
        "stage": "sft",
        "finetuning_type": "lora",
        "dataset": "identity,alpaca_en_demo",
        "dataset_dir": str(DATA),
        "template": "auto",
        "cutoff_len": 512,
        "max_samples": max_samples,
        "per_device_train_batch_size": 8,
        "learning_rate": 1e-3,
        "lr_scheduler_type": "cosine",
        "max_steps": steps,
        "logging_steps": 5,
        "save_strategy": "no",
        "save_every_minutes": None,
        "lora_rank": 8,
        "devices": "cpu",
        "seed": 42,
        "precision": "fp32",
        **extra,
    }
    (run_dir / "spec.json").write_text(json.dumps(spec))
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-m", "loraforge.engine", "run", str(run_dir)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    metrics = [e for e in map(parse_line, proc.stdout.splitlines()) if e.type == "metric"]
    s = json.loads((run_dir / "output" / "summary.json").read_text())
    return {
        "tokens": s["tokens_trained"],
        "train_runtime_s": s["runtime_s"],
        "tokens_per_s": round(s["tokens_trained"] / s["runtime_s"], 1),
        "final_loss": s["final_train_loss"],
        "peak_rss_mb": metrics[-1].peak_rss_mb,  # type: ignore[union-attr]
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--max-samples", type=int, default=300)
    args = ap.parse_args()
    from loraforge.engine.demo_model import cached_demo_model

    model = cached_demo_model(REPO / ".cache" / "demo-models", arch="llama", size="small")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # "padded" is the original baseline: right-padded batches, full logits (the speed
        # switches off). "padding_free" is the default unpacked path.
        padded = run(
            model,
            work,
            "padded",
            args.steps,
            args.max_samples,
            packing=False,
            padding_free=False,
            sparse_lm_head=False,
            fused_lm_loss=False,
            fused_lora=False,
        )
        free = run(model, work, "padding_free", args.steps, args.max_samples, packing=False)
        packed = run(model, work, "packed", args.steps, args.max_samples, packing=True)
        neat = run(model, work, "neat", args.steps, args.max_samples, neat_packing=True)
    print(
        json.dumps(
            {
                "benchmark": "packing",
                "model": "llama-small (demo)",
                "steps": args.steps,
                "nproc": os.cpu_count(),
                "padded": padded,
                "padding_free": free,
                "packing": packed,
                "neat_packing": neat,
                "speedup_packing": round(packed["tokens_per_s"] / padded["tokens_per_s"], 2),
                "speedup_neat_packing": round(neat["tokens_per_s"] / padded["tokens_per_s"], 2),
                "speedup_padding_free": round(free["tokens_per_s"] / padded["tokens_per_s"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
