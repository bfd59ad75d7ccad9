"""Trainer callbacks: events + trainer_log.jsonl, time-based checkpoints, NaN stop, cancellation.

One callback (`EngineCallback`) turns the Trainer's own `on_log` dictionaries into our `metric` /
`eval` events and LLaMA-Factory's `trainer_log.jsonl` lines; it adds what the Trainer does not log
(tokens/s over the interval, ETA, peak memory, MFU on CUDA). Between log steps it emits a small
`progress` event after every step, at most once per LORAFORGE_PROGRESS_INTERVAL_S (default 1 s), so
step, ETA and throughput move even with a large `logging_steps` (engine/progress.py). It only
observes: no extra forward passes, no per-step synchronisation beyond what the Trainer already does.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from loraforge.engine.events import EventWriter
from loraforge.engine.failures import NanLossError
from loraforge.engine.progress import ProgressClock, interval_from_env
from loraforge.engine.resources import own_peak_rss_mb

TRAINER_LOG = "trainer_log.jsonl"
# Logged metrics without a `/` that a stage adds and the metric event carries (KTO's KL estimate).
_STAGE_EXTRAS = frozenset({"kl"})

# Dense bf16 peak FLOP/s per device, for MFU. Convention: 6 * N_params * tokens (forward +
# backward of the matmuls, attention's quadratic term ignored), as in PaLM/nanoGPT.
_PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12, "4090": 165e12}


def _fmt_td(seconds: float) -> str:
    return str(timedelta(seconds=max(0, int(seconds))))


class CancelFlag:
    """Set from the SIGTERM handler; read by the callback at step boundaries."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


class EngineCallback(TrainerCallback):
    def __init__(
        self,
        writer: EventWriter,
        run_dir: Path,
        *,
        cancel: CancelFlag,
        save_every_minutes: float | None,
        n_params: int = 0,
        is_world_zero: bool = True,
        world_size: int = 1,
        final_checkpoint: bool = True,
        progress_interval_s: float | None = None,
    ) -> None:
        self.world_size = world_size
        self.final_checkpoint = final_checkpoint
        self.writer = writer
        self.cancel = cancel
        self.save_every_s = save_every_minutes * 60 if save_every_minutes else None
        self.n_params = n_params
        self.is_world_zero = is_world_zero
        self.trainer_log = run_dir / TRAINER_LOG
        self.start = time.monotonic()
        self.last_save = self.start
        self.last_log_t = self.start
        self.last_log_step = 0
        self.last_tokens = 0
        self.start_tokens = 0
        self.last_loss: float | None = None
        self.last_eval_loss: float | None = None
        self.cancelled_at: int | None = None
        self.peak_flops = self._peak_flops()
        interval = interval_from_env() if progress_interval_s is None else progress_interval_s
        self.clock = ProgressClock(interval_s=interval)

    @staticmethod
    def _peak_flops() -> float | None:
        if not torch.cuda.is_available():
            return None
        name = torch.cuda.get_device_name()
        return next((v for k, v in _PEAK_FLOPS.items() if k in name), None)

    # -- lifecycle ---------------------------------------------------------------------------------

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        # On resume the Trainer has already loaded the global step and token count: rates and
        # ETA are computed over this session only.
        self.start = self.last_save = self.last_log_t = time.monotonic()
        self.last_log_step = state.global_step
        self.start_tokens = self.last_tokens = int(state.num_input_tokens_seen or 0)
        self.clock.begin(step=state.global_step, tokens=self.start_tokens, now=self.start)
        self.writer.status("training")

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        now = time.monotonic()
        self._progress(state, now)
        if not self.final_checkpoint and state.global_step >= state.max_steps:
            # transformers saves a full checkpoint (optimizer, RNG, ...) at the last step whenever
            # save_strategy is "steps" - which run.py uses even for the spec's "no", so that time-
            # based and SIGTERM saves work. With "no" that checkpoint is pure cost: output/ is the
            # result. Time-based and cancel saves below still apply.
            control.should_save = False
        if self._cancel_requested(args):
            # Finish the step we are in, save it, stop; run.py then emits `cancelled`.
            self.cancelled_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
        elif self.save_every_s and now - self.last_save >= self.save_every_s:
            control.should_save = True
        if control.should_save:
            self.last_save = now

    def _progress(self, state: TrainerState, now: float) -> None:
        tokens = int(state.num_input_tokens_seen or 0)
        sample = self.clock.tick(step=state.global_step, total=state.max_steps, tokens=tokens, now=now)
        if sample is not None:
            self.writer.emit("progress", epoch=state.epoch, **sample)

    def _cancel_requested(self, args: TrainingArguments) -> bool:
        if self.world_size == 1:
            return self.cancel.is_set()
        # Under DDP every rank must stop on the same step, or the others would hang in the next
        # all-reduce: agree on the flag (one tiny collective per step, only when distributed).
        import torch.distributed as dist

        flag = torch.tensor([1.0 if self.cancel.is_set() else 0.0], device=args.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        path = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
        metrics = {"loss": self.last_loss} if self.last_loss is not None else {}
        self.writer.emit("checkpoint", step=state.global_step, path=str(path), metrics=metrics)

    # -- metrics -----------------------------------------------------------------------------------

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        if not logs:
            return
        if "eval_loss" in logs:
            self._on_eval(state, logs)
            return
        if "loss" not in logs:
            return  # the final train summary (train_runtime, ...), reported via summary.json
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            control.should_training_stop = True
            raise NanLossError(
                f"The training loss became {loss} at step {state.global_step}; training was stopped.",
                step=state.global_step,
            )
        self.last_loss = loss
        now = time.monotonic()
        step, total = state.global_step, state.max_steps
        tokens = int(state.num_input_tokens_seen or 0)
        dt = max(now - self.last_log_t, 1e-9)
        d_steps = step - self.last_log_step
        d_tokens = tokens - self.last_tokens
        elapsed = now - self.start
        eta = self.clock.eta(step, total, now)
        samples_per_step = (
            args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        )
        tokens_per_s = d_tokens / dt if d_tokens else None
        metric: dict[str, Any] = {
            "step": step,
            "total_steps": total,
            "epoch": logs.get("epoch", state.epoch),
            "loss": loss,
            "lr": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
            "tokens_per_s": tokens_per_s,
            "samples_per_s": d_steps * samples_per_step / dt,
            "tokens_total": tokens or None,
            "elapsed_s": round(elapsed, 3),
            "eta_s": round(eta, 1) if eta is not None else None,
            "progress": step / total if total else None,
            "peak_rss_mb": round(own_peak_rss_mb(), 1),
        }
        # Stage-specific extras (DPO/KTO rewards/*, logps/*, KTO's kl) go along as-is.
        for key, val in logs.items():
            if ("/" in key or key in _STAGE_EXTRAS) and isinstance(val, int | float):
                metric[key.replace("/", "_")] = val
        if torch.cuda.is_available():
            mb = 1024 * 1024
            metric["cuda_allocated_mb"] = round(torch.cuda.memory_allocated() / mb, 1)
            metric["cuda_reserved_mb"] = round(torch.cuda.memory_reserved() / mb, 1)
            metric["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / mb, 1)
            with contextlib.suppress(Exception):  # pynvml absent: utilisation is optional
                metric["gpu_util_pct"] = float(torch.cuda.utilization())
            if self.peak_flops and tokens_per_s and self.n_params:
                metric["mfu"] = round(
                    6 * self.n_params * tokens_per_s / (self.peak_flops * args.world_size), 4
                )
        self.writer.emit("metric", **metric)
        if self.is_world_zero:
            self._trainer_log(
                {
                    "current_steps": step,
                    "total_steps": total,
                    "loss": loss,
                    "lr": logs.get("learning_rate"),
                    "epoch": round(float(metric["epoch"] or 0), 2),
                    "percentage": round(step / total * 100, 2) if total else None,
                    "elapsed_time": _fmt_td(elapsed),
                    "remaining_time": _fmt_td(eta or 0),
                    "throughput": round((tokens - self.start_tokens) / max(elapsed, 1e-9), 2),
                    "total_tokens": tokens,
                }
            )
        self.last_log_t, self.last_log_step, self.last_tokens = now, step, tokens

    def _on_eval(self, state: TrainerState, logs: dict[str, Any]) -> None:
        loss = float(logs["eval_loss"])
        self.last_eval_loss = loss
        ppl = math.exp(loss) if loss < 50 else None
        extra = {k: v for k, v in logs.items() if k not in {"eval_loss", "epoch"}}
        self.writer.emit("eval", step=state.global_step, eval_loss=loss, perplexity=ppl, metrics=extra)
        if self.is_world_zero:
            self._trainer_log(
                {
                    "current_steps": state.global_step,
                    "total_steps": state.max_steps,
                    "eval_loss": loss,
                    "epoch": round(float(state.epoch or 0), 2),
                    "percentage": round(state.global_step / state.max_steps * 100, 2)
                    if state.max_steps
                    else None,
                    "elapsed_time": _fmt_td(time.monotonic() - self.start),
                }
            )

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        # Evaluation is over; back to training (the UI shows `evaluating` in between).
        if not control.should_training_stop and state.global_step < state.max_steps:
            self.writer.status("training")

    def _trainer_log(self, row: dict[str, Any]) -> None:
        with self.trainer_log.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


class EvalStatusCallback(TrainerCallback):
    """Emits `evaluating` when an evaluation starts (the Trainer has no on_evaluate_begin hook, so
    we watch for the step on which it will evaluate)."""

    def __init__(self, writer: EventWriter) -> None:
        self.writer = writer

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if control.should_evaluate:
            self.writer.status("evaluating")
