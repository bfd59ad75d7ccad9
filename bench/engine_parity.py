"""Parity and overhead: the engine vs a minimal plain-TRL SFTTrainer script, same tiny model,
data (identity, alpaca), seed and hyperparameters. Prints one JSON object:
per-step loss difference, wall-time ratio engine/plain, peak RSS of each.

Usage: .venv/bin/python bench/engine_parity.py [--steps 30] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "datasets" / "llamafactory").resolve()

PLAIN_TRL = r"""
import json, sys, time
t0 = time.time()
import datasets, torch, transformers
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer
model_dir, data, out, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
transformers.set_seed(42)
rows = json.load(open(data))
train = datasets.Dataset.from_list([
    {"prompt": [{"role": "user", "content": "\n".join(x for x in (r["instruction"], r["input"]) if x)}],
     "completion": [{"role": "assistant", "content": r["output"]}]} for r in rows])
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
cfg = SFTConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=8, learning_rate=1e-3,
    lr_scheduler_type="cosine", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, logging_steps=1,
    max_length=512, completion_only_loss=True, use_cpu=True, bf16=False, fp16=False,
    gradient_checkpointing=False, seed=42, report_to="none", save_strategy="no",
    include_num_input_tokens_seen="non_padding", disable_tqdm=True)
lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
tr = SFTTrainer(model=model, args=cfg, train_dataset=train, processing_class=tok, peft_config=lora)
res = tr.train()
print("RESULT " + json.dumps({"losses": {h["step"]: h["loss"] for h in tr.state.log_history if "loss" in h},
    "train_runtime": res.metrics["train_runtime"], "tokens": tr.state.num_input_tokens_seen}))
"""


def _child_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_plain(model: Path, work: Path, steps: int) -> dict:
    t = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            PLAIN_TRL,
            str(model),
            str(DATA / "identity.json"),
            str(work / "trl"),
            str(steps),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=_env(),
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[7:])
    out["wall_s"] = time.time() - t
    return out


def run_engine(model: Path, work: Path, steps: int) -> dict:
    from loraforge.engine.events import parse_line

    run_dir = work / "engine"
    run_dir.mkdir()
    spec = {
        "model_name_or_path": str(model),
        "stage": "sft",
        "finetuning_type": "lora",
        "dataset": "identity",
        "dataset_dir": str(DATA),
        "template": "auto",
        "cutoff_len": 512,
        "per_device_train_batch_size": 8,
        "learning_rate": 1e-3,
        "lr_scheduler_type": "cosine",
        "max_steps": steps,
        "logging_steps": 1,
        "save_strategy": "no",
        "save_every_minutes": None,
        "lora_rank": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "lora_target": "all",
        "devices": "cpu",
        "seed": 42,
        "precision": "fp32",
    }
    (run_dir / "spec.json").write_text(json.dumps(spec))
    t = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "loraforge.engine", "run", str(run_dir)],
        capture_output=True,
        text=True,
        check=True,
        env=_env(),
    )
    wall = time.time() - t
    losses = {e.step: e.loss for e in map(parse_line, proc.stdout.splitlines()) if e.type == "metric"}
    summary = json.loads((run_dir / "output" / "summary.json").read_text())
    return {
        "losses": losses,
        "train_runtime": summary["runtime_s"],
        "tokens": summary["tokens_trained"],
        "wall_s": wall,
    }


def _env() -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--model", type=Path, default=None)
    args = ap.parse_args()
    if args.model is None:
        from loraforge.engine.demo_model import cached_demo_model

        args.model = cached_demo_model(REPO / ".cache" / "demo-models", arch="llama", size="tiny")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plain = run_plain(args.model, work, args.steps)
        rss_plain = _child_rss_mb()
        engine = run_engine(args.model, work, args.steps)
        rss_after = _child_rss_mb()  # RUSAGE_CHILDREN is a running max over children
    common = sorted(set(map(int, plain["losses"])) & set(engine["losses"]))
    diffs = [abs(plain["losses"][str(s)] - engine["losses"][s]) for s in common]
    print(
        json.dumps(
            {
                "benchmark": "engine_parity",
                "model": str(args.model),
                "steps": args.steps,
                "max_abs_loss_diff": max(diffs) if diffs else None,
                "steps_compared": len(common),
                "tokens_plain": plain["tokens"],
                "tokens_engine": engine["tokens"],
                "train_runtime_plain_s": round(plain["train_runtime"], 3),
                "train_runtime_engine_s": engine["train_runtime"],
                "train_time_ratio_engine_over_plain": round(
                    engine["train_runtime"] / plain["train_runtime"], 3
                ),
                "wall_plain_s": round(plain["wall_s"], 2),
                "wall_engine_s": round(engine["wall_s"], 2),
                "wall_ratio_engine_over_plain": round(engine["wall_s"] / plain["wall_s"], 3),
                "peak_rss_mb_plain": round(rss_plain),
                "peak_rss_mb_max_of_both": round(rss_after),
                "nproc": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
