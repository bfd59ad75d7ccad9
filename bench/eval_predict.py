"""Generate and score 200 samples: `loraforge eval` vs LLaMA-Factory's `do_predict` + `predict_with_generate`.

Both run the very same YAML (`bench/peers/lf_predict.yaml`: the peer harness's llama-small, identity's
91 rows + alpaca_en_demo's first 109, template `default`, cutoff 512, greedy, max_new_tokens 64): LF through
`llamafactory-cli train` (`bench/peers/lf_predict.sh`), ours through `loraforge eval`, each under
`/usr/bin/time -v`, interleaved (LF, ours, LF, ours, ...) so that load from other work on the machine
falls on both. Prints one JSON object: per peer and batch size the median wall time, CPU seconds, LF's
own `predict_runtime` and peak RSS; the share of identical predictions; BLEU-4/ROUGE as LF wrote them,
as we compute them on LF's predictions, and ours.

Needs `bash ../shared/peer-bench/setup.sh` (LF's venv, model and data under /tmp/peerbench).
Usage: .venv/bin/python bench/eval_predict.py [--rounds 1] [--batch default 8 32] [--max-new-tokens 64]
       [--threads 1]   (`default` leaves per_device_eval_batch_size to each tool: LF's 8, our token budget)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from time_v import parse_time_v

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO / "bench" / "peers"
ROOT = Path(os.environ.get("PEERBENCH_ROOT", "/tmp/peerbench"))


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CUDA_VISIBLE_DEVICES="",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
    )
    return env


def run_lf(out: Path, model: str, tokens: int, batch: str, threads: int) -> dict[str, Any]:
    proc = subprocess.run(
        ["bash", str(PEERS / "lf_predict.sh"), str(out), model, str(tokens), batch],
        capture_output=True,
        text=True,
        env=_env(threads),
        check=True,
    )
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**line, "runtime_s": line["predict_results"]["predict_runtime"]}


def run_ours(out: Path, model: str, tokens: int, batch: str, threads: int) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    model_dir = ROOT / "models" / f"llama-{model}" if model in ("small", "tiny") else Path(model)
    text = (PEERS / "lf_predict.yaml").read_text()
    text = text.replace("__MODEL__", str(model_dir)).replace("__DATA_DIR__", str(ROOT / "data"))
    text = text.replace("__OUT__", str(out / "out"))
    text = re.sub(r"(?m)^max_new_tokens: .*$", f"max_new_tokens: {tokens}", text)
    if batch != "default":
        text += f"per_device_eval_batch_size: {batch}\n"
    (out / "cfg.yaml").write_text(text)  # LF's own YAML, unchanged but for the placeholders
    cmd = ["/usr/bin/time", "-v", "-o", str(out / "time.txt"), str(REPO / ".venv/bin/loraforge"), "eval"]
    with (out / "predict.log").open("w") as log:
        subprocess.run([*cmd, str(out / "cfg.yaml")], stdout=log, stderr=log, env=_env(threads), check=True)
    results = json.loads((out / "out" / "predict_results.json").read_text())
    return {
        "peer": "loraforge",
        **parse_time_v((out / "time.txt").read_text()),
        "predict_results": results,
        "runtime_s": results["predict_runtime"],
        "out_dir": str(out / "out"),
    }


def _predictions(out_dir: str) -> list[dict[str, str]]:
    lines = (Path(out_dir) / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def compare(lf_out: str, our_out: str, lf_results: dict[str, float]) -> dict[str, Any]:
    from loraforge.engine.eval.overlap import lf_scores

    lf, ours = _predictions(lf_out), _predictions(our_out)
    same = sum(a["predict"] == b["predict"] for a, b in zip(lf, ours, strict=True))
    on_lf = lf_scores([p["predict"] for p in lf], [p["label"] for p in lf])
    on_ours = lf_scores([p["predict"] for p in ours], [p["label"] for p in ours])
    lf_written = {k: lf_results[f"predict_{k}"] for k in on_lf}
    return {
        "samples": len(lf),
        "identical_predictions_pct": round(100 * same / len(lf), 2),
        "identical_labels": all(a["label"] == b["label"] for a, b in zip(lf, ours, strict=True)),
        "identical_prompts": all(a["prompt"] == b["prompt"] for a, b in zip(lf, ours, strict=True)),
        "lf_scores_as_lf_wrote": {k: round(v, 4) for k, v in lf_written.items()},
        "our_scores_on_lf_predictions": {k: round(v, 4) for k, v in on_lf.items()},
        "max_abs_diff_on_lf_predictions": round(max(abs(on_lf[k] - lf_written[k]) for k in on_lf), 6),
        "our_scores_on_our_predictions": {k: round(v, 4) for k, v in on_ours.items()},
    }


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in rows), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--batch", nargs="+", default=["default", "8", "32"], help="`default`: each tool's own (LF: 8)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="OMP/MKL threads, the same for both")
    args = parser.parse_args()
    if not (ROOT / "lf-venv" / "bin" / "llamafactory-cli").exists():
        sys.exit(f"no LLaMA-Factory venv under {ROOT}: run bash ../shared/peer-bench/setup.sh first")
    work = ROOT / "runs" / f"eval-predict-{time.strftime('%Y%m%d-%H%M%S')}"
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in range(args.rounds):
        for batch in args.batch:
            for peer, run in (("llamafactory", run_lf), ("loraforge", run_ours)):
                result = run(
                    work / f"{peer}-b{batch}-r{r}", args.model, args.max_new_tokens, batch, args.threads
                )
                runs.setdefault(f"{peer}-b{batch}", []).append(result)
                print(
                    json.dumps({k: result[k] for k in ("peer", "wall_s", "cpu_s", "runtime_s")}),
                    file=sys.stderr,
                )
    summary: dict[str, Any] = {
        "model": args.model,
        "max_new_tokens": args.max_new_tokens,
        "threads": args.threads,
        "rounds": args.rounds,
        "interleaved": True,
        "load_average_at_end": os.getloadavg(),
    }
    for batch in args.batch:
        lf, ours = runs[f"llamafactory-b{batch}"], runs[f"loraforge-b{batch}"]
        per = {
            peer: {k: _median(rows, k) for k in ("wall_s", "cpu_s", "runtime_s", "peak_rss_mb")}
            for peer, rows in (("llamafactory", lf), ("loraforge", ours))
        }
        summary[f"batch_{batch}"] = {
            **per,
            "speedup_wall": round(per["llamafactory"]["wall_s"] / per["loraforge"]["wall_s"], 2),
            "speedup_cpu": round(per["llamafactory"]["cpu_s"] / per["loraforge"]["cpu_s"], 2),
            "speedup_predict_runtime": round(
                per["llamafactory"]["runtime_s"] / per["loraforge"]["runtime_s"], 2
            ),
            **compare(lf[-1]["out_dir"], ours[-1]["out_dir"], lf[-1]["predict_results"]),
        }
    summary["work_dir"] = str(work)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
