"""One training run, top to bottom: setup -> train -> cleanup.

    run(RUN_DIR)   reads RUN_DIR/spec.json and writes
                   RUN_DIR/events.jsonl        the event stream (also on stdout, marked)
                   RUN_DIR/trainer_log.jsonl   LLaMA-Factory-compatible log
                   RUN_DIR/tensorboard/        TensorBoard event files
                   RUN_DIR/checkpoints/        checkpoint-<step>/ (resumable: optimizer, scheduler, RNG)
                   RUN_DIR/output/             adapter or full weights, tokenizer, spec.json, summary.json

A spec with `"stage": "evaluation"` is an evaluation job instead (`engine/eval/job.py`): same RUN_DIR,
same events, one process; SIGTERM stops it at the next batch boundary with its results kept.
A spec with `"stage": "export"` converts a model for deployment (`engine/export/job.py`).

Under torchrun every rank runs this; only rank 0 emits events and writes files of its own.
SIGTERM: finish the current step, save a checkpoint, emit `cancelled`, exit 0 - or, if that takes
longer than LORAFORGE_CANCEL_GRACE_S (default 120 s), emit `cancelled` without one and exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from loraforge.engine.events import EventWriter
from loraforge.engine.failures import classify
from loraforge.engine.resources import ResourceSampler

if TYPE_CHECKING:
    from loraforge.engine.spec import JobSpec

SPEC_FILE = "spec.json"
SUMMARY_FILE = "summary.json"


class Cancelled(Exception):
    """SIGTERM before training started: nothing worth saving yet."""


class _Cancellation:
    """SIGTERM handling. Before training: abort at once. During training: ask the callback to
    save and stop at the next step boundary, and arm a watchdog so the exit stays bounded."""

    def __init__(self, writer: EventWriter, grace_s: float) -> None:
        from loraforge.engine.callbacks import CancelFlag

        self.flag = CancelFlag()
        self.writer = writer
        self.grace_s = grace_s
        self.training = False
        self.done = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handler)

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.flag.is_set():  # second SIGTERM: the caller really means it
            self._hard_exit("second SIGTERM")
        self.flag.set()
        threading.Thread(target=self._watchdog, daemon=True).start()
        if not self.training:
            raise Cancelled()

    def _watchdog(self) -> None:
        if not self.done.wait(self.grace_s):
            self._hard_exit(f"no step boundary within {self.grace_s:.0f} s")

    def _hard_exit(self, why: str) -> None:
        self.writer.status("cancelled", f"cancelled without a checkpoint ({why})")
        self.writer.close()
        sys.stdout.flush()
        os._exit(0)


def _dist_info() -> tuple[int, int, int]:
    return (
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("LOCAL_RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
    )


def _device(spec: JobSpec) -> str:
    import torch

    if spec.devices == "cpu" or not torch.cuda.is_available():
        return "cpu"
    return "cuda"


def _report_to(spec: JobSpec) -> list[str]:
    """TensorBoard always; MLflow / SwanLab / W&B only when asked for *and* installed (a missing
    optional tracker should not fail a run that took hours to queue)."""
    import importlib.util

    wanted = {"mlflow", "swanlab", "wandb"} if "all" in spec.report_to else set(spec.report_to)
    extra = sorted(n for n in wanted & {"mlflow", "swanlab", "wandb"} if importlib.util.find_spec(n))
    return ["tensorboard", *extra]


def _train_kwargs(
    spec: JobSpec, run_dir: Path, precision: Any, device: str, has_eval: bool, world: int
) -> dict[str, Any]:
    """TrainingArguments shared by every stage, from the spec's LLaMA-Factory-named fields."""
    import importlib.util

    eval_strategy = spec.effective_eval_strategy if has_eval else "no"
    gc = spec.gradient_checkpointing
    kwargs: dict[str, Any] = {
        "output_dir": str(run_dir / "checkpoints"),
        "per_device_train_batch_size": spec.per_device_train_batch_size,
        "per_device_eval_batch_size": spec.per_device_eval_batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps,
        "learning_rate": spec.learning_rate,
        "num_train_epochs": spec.num_train_epochs,
        "max_steps": spec.max_steps,
        "lr_scheduler_type": spec.lr_scheduler_type,
        "warmup_steps": spec.warmup_steps or spec.warmup_ratio,  # transformers 5: a float < 1 is a ratio
        "weight_decay": spec.weight_decay,
        "max_grad_norm": spec.max_grad_norm,
        "optim": spec.optim,
        "seed": spec.seed,
        "logging_steps": spec.logging_steps,
        # "no" still means steps with an unreachable interval: time-based and SIGTERM checkpoints
        # go through the Trainer's own save path (control.should_save).
        "save_strategy": "steps" if spec.save_strategy == "no" else spec.save_strategy,
        "save_steps": 10**9 if spec.save_strategy == "no" else spec.save_steps,
        "save_total_limit": spec.save_total_limit,
        "eval_strategy": eval_strategy,
        "eval_steps": spec.eval_steps if eval_strategy == "steps" else None,
        "bf16": precision.bf16,
        "fp16": precision.fp16,
        "use_cpu": device == "cpu",
        "report_to": _report_to(spec),
        "run_name": spec.run_name,
        # non-padding token count: the basis of tokens/s and LLaMA-Factory's total_tokens
        "include_num_input_tokens_seen": "non_padding",
        # The default replaces a NaN step loss by the running mean, hiding the very thing we stop on.
        "logging_nan_inf_filter": False,
        "remove_unused_columns": False,  # the data layer's columns are exactly what the collator needs
        "dataloader_num_workers": spec.dataloader_num_workers,
        "disable_tqdm": True,  # progress is our metric events; tqdm would only add noise
        "ddp_find_unused_parameters": False,
        "ddp_backend": "gloo" if device == "cpu" and world > 1 else None,
        "torch_compile": spec.torch_compile,
    }
    if gc:  # only when on: the key itself is deprecated in transformers 5 and warns
        kwargs["gradient_checkpointing"] = True
        kwargs["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    # group_by_length: the data layer's own length-grouped batch sampler (stages/sft.py).
    if spec.enable_liger_kernel and device == "cuda" and importlib.util.find_spec("liger_kernel") is not None:
        kwargs["use_liger_kernel"] = True
    return kwargs


def _resume_path(spec: JobSpec, run_dir: Path) -> str | None:
    resume = spec.resume_from_checkpoint
    if not resume:
        return None
    if resume is True or str(resume).lower() in {"true", "latest"}:
        from transformers.trainer_utils import get_last_checkpoint

        ckpt_dir = run_dir / "checkpoints"
        last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
        return last  # nothing to resume from yet: start fresh
    return str(resume)


def run(run_dir: Path) -> int:
    """Runs the job in RUN_DIR; returns the process exit code (0 also for `cancelled`)."""
    run_dir = run_dir.resolve()
    rank, local_rank, world = _dist_info()
    writer = EventWriter(run_dir, enabled=rank == 0)
    cancel = _Cancellation(writer, float(os.environ.get("LORAFORGE_CANCEL_GRACE_S", "120")))
    cancel.install()
    # Started once the spec says how often (rank 0 only); a daemon thread, stopped in `finally`.
    sampler = ResourceSampler(writer, 0.0)
    try:
        raw = _raw_spec(run_dir)
        if raw.get("stage") == "evaluation":
            # Stop at the next batch boundary (results so far are stored), bounded by the watchdog.
            cancel.training = True
            from loraforge.engine.eval.job import run_eval_job

            return run_eval_job(run_dir, raw, writer, cancel.flag.is_set)
        if raw.get("stage") == "export":
            # Polled between tensors and phases: partial files are removed, then `cancelled`.
            cancel.training = True
            from loraforge.engine.export.job import run_export_job

            return run_export_job(run_dir, raw, writer, cancel.flag.is_set)
        return _run(run_dir, writer, cancel, sampler, rank=rank, local_rank=local_rank, world=world)
    except Cancelled:
        writer.status("cancelled", "cancelled before training started")
        return 0
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            writer.status("cancelled", "interrupted")
            raise
        traceback.print_exc(file=sys.stderr)
        failure = classify(exc, _SPEC_SEEN.get("spec"))
        writer.emit("error", **failure.event_data())
        writer.status("failed", failure.message)
        return 1
    finally:
        cancel.done.set()
        sampler.stop()
        writer.close()


def _raw_spec(run_dir: Path) -> dict[str, Any]:
    """spec.json as plain JSON, to dispatch on its stage; {} when unreadable (load_spec says why)."""
    try:
        raw = json.loads((run_dir / SPEC_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


# The spec as far as it was loaded, for the failure classifier's suggestions.
_SPEC_SEEN: dict[str, Any] = {}


def _run(
    run_dir: Path,
    writer: EventWriter,
    cancel: _Cancellation,
    sampler: ResourceSampler,
    *,
    rank: int,
    local_rank: int,
    world: int,
) -> int:
    # ------------------------------------------------------------------ setup
    from loraforge.engine.spec_loading import load_spec

    spec = load_spec(run_dir / SPEC_FILE)
    _SPEC_SEEN["spec"] = spec
    t0 = time.monotonic()
    if rank == 0:
        sampler.interval_s = spec.resource_interval_seconds
        sampler.start()
    if spec.stage == "merge":
        # No trainer, no data: load base + adapter, fold the deltas in, save full weights.
        from loraforge.engine.stages.merge import run_merge

        return run_merge(spec, run_dir, writer)
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(run_dir / "tensorboard"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # we fork no tokenizer workers after use

    import torch
    from transformers import set_seed

    from loraforge.engine import adapter_options
    from loraforge.engine import model_loading as ml
    from loraforge.engine.callbacks import EngineCallback, EvalStatusCallback
    from loraforge.engine.data import prepare_data
    from loraforge.engine.stages import StageContext, load_stage

    device = _device(spec)
    if device == "cuda":
        torch.cuda.set_device(local_rank)
    stage = load_stage(str(spec.stage))
    # Seed before the model exists so LoRA's initial weights are reproducible (the Trainer seeds
    # again later, too late for them).
    set_seed(spec.seed)

    writer.status("loading_data")
    model_path = ml.resolve_model_path(spec)
    tokenizer = ml.load_tokenizer(model_path, spec)
    if stage.NEEDS_CHAT_TEMPLATE:
        ml.require_chat_template(tokenizer, spec)
    # Data before weights: a bad dataset fails in seconds, not after loading a 70B model.
    data = prepare_data(spec, tokenizer, cache_dir=os.environ.get("LORAFORGE_DATA_CACHE") or None)
    stats = getattr(data, "stats", None)
    if stats is not None:
        writer.log(f"data: {_stats_text(stats)}")

    writer.status("loading_model")
    precision = ml.choose_precision(spec, device)
    model = ml.load_model(model_path, spec, precision, device, tokenizer)
    for note in adapter_options.notes(model):  # rope scaling, resized embeddings
        writer.log(note)
    trainable, total = ml.count_params(model)
    writer.log(
        f"model {model_path.name}: {total:,} parameters, {trainable:,} trainable "
        f"({100 * trainable / max(total, 1):.3f}%), {precision.name} on {device}, world size {world}"
    )

    callback = EngineCallback(
        writer,
        run_dir,
        cancel=cancel.flag,
        save_every_minutes=spec.save_every_minutes,
        n_params=total,
        is_world_zero=rank == 0,
        world_size=world,
        final_checkpoint=spec.save_strategy != "no",
    )
    kwargs = _train_kwargs(
        spec, run_dir, precision, device, has_eval=data.eval_dataset is not None, world=world
    )
    ctx = StageContext(
        spec=spec,
        model=model,
        tokenizer=tokenizer,
        data=data,
        train_kwargs=kwargs,
        callbacks=[callback, EvalStatusCallback(writer)],
    )
    trainer = stage.build_trainer(ctx)
    loraplus = adapter_options.prepare_trainer(trainer, spec)  # LoRA+ parameter groups
    if loraplus:
        writer.log(loraplus)
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # it prints raw log dicts to stdout: noise
    setup_s = time.monotonic() - t0

    # ------------------------------------------------------------------ train
    cancel.training = True
    if cancel.flag.is_set():
        raise Cancelled()
    resume = _resume_path(spec, run_dir)
    if resume:
        writer.log(f"resuming from {resume}")
    result = trainer.train(resume_from_checkpoint=resume)
    state = trainer.state

    if callback.cancelled_at is not None or cancel.flag.is_set():
        # The callback asked for a save at the step boundary; the Trainer has written it.
        writer.status("cancelled", f"stopped at step {state.global_step}; checkpoint saved")
        cancel.done.set()
        return 0

    # ------------------------------------------------------------------ cleanup
    final_eval: float | None = callback.last_eval_loss
    if data.eval_dataset is not None and (final_eval is None or _last_eval_step(state) != state.global_step):
        writer.status("evaluating")
        final_eval = float(trainer.evaluate()["eval_loss"])

    writer.status("saving")
    out = run_dir / "output"
    trainer.save_model(str(out))  # adapter (PEFT) or full weights, safetensors; rank 0 writes
    if rank == 0:
        converted = adapter_options.finish_output(model, spec, out)  # PiSSA -> plain LoRA
        if converted:
            writer.log(converted)
        tokenizer.save_pretrained(str(out))
        (out / SPEC_FILE).write_text(_spec_json(spec), encoding="utf-8")
        summary = {
            "final_train_loss": callback.last_loss,
            "train_loss": result.training_loss,
            "final_eval_loss": final_eval,
            "tokens_trained": int(state.num_input_tokens_seen or 0),
            "steps": state.global_step,
            "epochs": state.epoch,
            "runtime_s": round(result.metrics.get("train_runtime", 0.0), 3),
            "setup_s": round(setup_s, 3),
            "train_tokens_per_s": result.metrics.get("train_tokens_per_second"),
            "trainable_params": trainable,
            "total_params": total,
            "precision": precision.name,
            "world_size": world,
        }
        (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
        kind = "adapter" if (out / "adapter_config.json").exists() else "full_model"
        writer.emit("artifact", kind=kind, path=str(out))
        writer.emit("artifact", kind="summary", path=str(out / SUMMARY_FILE))
    writer.status("succeeded")
    return 0


def _last_eval_step(state: Any) -> int | None:
    steps = [h.get("step") for h in state.log_history if "eval_loss" in h]
    return steps[-1] if steps else None


def _stats_text(stats: Any) -> str:
    if hasattr(stats, "as_dict"):
        stats = stats.as_dict()
    elif hasattr(stats, "model_dump"):
        stats = stats.model_dump()
    elif hasattr(stats, "__dict__") and not isinstance(stats, dict):
        stats = dict(vars(stats))
    if isinstance(stats, dict):
        return ", ".join(f"{k}={v}" for k, v in stats.items() if not isinstance(v, list | dict))
    return str(stats)


def _spec_json(spec: Any) -> str:
    if hasattr(spec, "model_dump_json"):
        return str(spec.model_dump_json(indent=2))
    return json.dumps(spec, indent=2, default=str)


def main(run_dir: str) -> int:
    with contextlib.suppress(AttributeError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    return run(Path(run_dir))
