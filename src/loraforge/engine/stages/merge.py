"""The `merge` stage: no training. Base model + LoRA adapter -> merged full weights and tokenizer in
RUN_DIR/output, with the usual status and artifact events so the scheduler finalises the job like any
other (and the model registry turns the output into a `full` version).

Not a trainer stage (`load_stage` is never asked for it): `run.py` hands merge specs here directly.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from loraforge.engine.events import EventWriter

SUMMARY_FILE = "summary.json"


def build_trainer(ctx: Any) -> Any:
    raise ValueError("stage merge does not train; run.py calls run_merge() for it")


def run_merge(spec: Any, run_dir: Path, writer: EventWriter) -> int:
    from loraforge.engine import model_loading as ml
    from loraforge.engine.merge import merge_adapter

    t0 = time.monotonic()
    writer.status("loading_model")
    base = ml.resolve_model_path(spec)  # a local folder (hub ids resolved through the shared cache)
    adapter = Path(str(spec.adapter_name_or_path))
    writer.log(f"merging adapter {adapter.name} into {base.name}")
    dtype = {"bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}.get(str(spec.precision), "auto")
    writer.status("saving")
    out = merge_adapter(adapter, run_dir / "output", base_model=base, dtype=dtype)
    summary = {
        "merged_adapter": str(adapter),
        "base_model": str(base),
        "runtime_s": round(time.monotonic() - t0, 3),
    }
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    writer.emit("artifact", kind="full_model", path=str(out))
    writer.emit("artifact", kind="summary", path=str(out / SUMMARY_FILE))
    writer.status("succeeded")
    return 0
