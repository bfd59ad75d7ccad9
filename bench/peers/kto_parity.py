"""Per-step KTO loss parity with LLaMA-Factory 0.9.5 on the same model, data and hyperparameters.

Runs LF (`llamafactory-cli train`, stage kto, LoRA) from the peer harness's venv and our engine
(`python -m loraforge.engine run`) with the same keys, then prints one JSON object: the steps
compared, max/mean |Δloss| and whether every step is within 1e-3 (the bar SFT parity meets).
Both use the Trainer's seeded random sampler and LF's KL pairs (example i with the answer of
example i-1), so the batches are the same.

Usage: python bench/peers/kto_parity.py [--model tiny|small] [--steps 20]
Needs ../shared/peer-bench/setup.sh (the LF venv and models under /tmp/peerbench).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ROOT = Path(os.environ.get("PEERBENCH_ROOT", "/tmp/peerbench"))
DATA = (REPO / ".." / "shared" / "datasets" / "llamafactory").resolve()
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def shared_keys(model: Path, steps: int, cutoff_len: int) -> dict[str, Any]:
    """The keys both tools read, in LLaMA-Factory's vocabulary."""
    return {
        "model_name_or_path": str(model), "stage": "kto", "finetuning_type": "lora", "lora_rank": 8,
        "lora_target": "all", "pref_beta": 0.1, "kto_chosen_weight": 1.0, "kto_rejected_weight": 1.0,
        "dataset": "kto_en_demo", "dataset_dir": str(DATA), "template": "default", "cutoff_len": cutoff_len,
        "max_samples": 64, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
        "learning_rate": 1e-3, "lr_scheduler_type": "constant", "max_steps": steps, "logging_steps": 1,
        "seed": 42, "dataloader_num_workers": 0, "report_to": "none",
    }  # fmt: skip


def run_lf(run: Path, keys: dict[str, Any]) -> Path:
    out = run / "lf"
    cfg = {
        **keys, "do_train": True, "output_dir": str(out), "save_strategy": "no", "use_cpu": True,
        "bf16": False, "disable_gradient_checkpointing": True, "overwrite_output_dir": True,
        "plot_loss": False, "include_num_input_tokens_seen": "non_padding",
    }  # fmt: skip
    (run / "lf.yaml").write_text(json.dumps(cfg))  # JSON is YAML; LF 0.9.5 misreads a .json file
    env = {**os.environ, **OFFLINE, "CUDA_VISIBLE_DEVICES": "", "HF_HOME": str(ROOT / "cache" / "hf")}
    with (run / "lf.log").open("w") as log:
        subprocess.run(
            [str(ROOT / "lf-venv" / "bin" / "llamafactory-cli"), "train", str(run / "lf.yaml")],
            env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
        )  # fmt: skip
    return out / "trainer_log.jsonl"


def run_ours(run: Path, keys: dict[str, Any]) -> Path:
    ours = run / "ours"
    ours.mkdir(parents=True, exist_ok=True)
    spec = {**keys, "devices": "cpu", "save_strategy": "no", "save_every_minutes": None, "precision": "fp32"}
    (ours / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, **OFFLINE, "CUDA_VISIBLE_DEVICES": ""}
    with (run / "ours.log").open("w") as log:
        subprocess.run(
            [sys.executable, "-m", "loraforge.engine", "run", str(ours)],
            env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
        )  # fmt: skip
    return ours / "trainer_log.jsonl"


def losses(path: Path) -> dict[int, float]:
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {r["current_steps"]: float(r["loss"]) for r in rows if r.get("loss") is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", choices=["tiny", "small"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cutoff-len", type=int, default=4096)
    ns = parser.parse_args()
    run = ROOT / "runs" / f"kto-parity-{ns.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    run.mkdir(parents=True)
    keys = shared_keys(ROOT / "models" / f"llama-{ns.model}", ns.steps, ns.cutoff_len)
    lf, ours = losses(run_lf(run, keys)), losses(run_ours(run, keys))
    common = sorted(set(lf) & set(ours))
    diffs = [abs(lf[s] - ours[s]) for s in common]
    print(json.dumps({
        "steps_compared": len(common), "max_abs_diff": round(max(diffs), 6) if diffs else None,
        "mean_abs_diff": round(sum(diffs) / len(diffs), 6) if diffs else None,
        "within_1e-3": bool(diffs) and max(diffs) <= 1e-3,
        "lf_first5": [lf[s] for s in common[:5]], "ours_first5": [ours[s] for s in common[:5]],
        "run": str(run),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
