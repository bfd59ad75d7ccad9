"""Failures explained: exception (+ the job spec) -> error event with a stable code, a human
message and a concrete suggestion computed from the spec.

Torch-free on purpose: exceptions are recognised by class name and message, so the server can
also use `classify_exit` on a process that died without saying why (OOM killer, segfault).
Codes are part of the protocol: the UI and API key help texts on them, so never rename one.

Where the fix is mechanical, `details["spec_patch"]` carries it machine-readably: a JSON merge patch
(RFC 7386: keys set to these values, a null removes the key) for the job's spec, so a UI can offer
"new job with the suggested fix" without parsing the English suggestion.
"""

from __future__ import annotations

import signal
import traceback
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Failure:
    code: str
    message: str
    suggestion: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def event_data(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "suggestion": self.suggestion,
            "details": self.details,
        }


# Stable codes.
CUDA_OOM = "cuda_oom"
HOST_OOM = "host_oom"
NAN_LOSS = "nan_loss"
NO_VALID_ROWS = "no_valid_rows"
MODEL_NOT_FOUND = "model_not_found"
MODEL_UNREADABLE = "model_unreadable"
NO_CHAT_TEMPLATE = "no_chat_template"
QLORA_NEEDS_CUDA = "qlora_requires_cuda"
MISSING_DEPENDENCY = "missing_dependency"
INVALID_SPEC = "invalid_spec"
DATA_NOT_FOUND = "data_not_found"
DISTRIBUTED = "distributed_error"
KILLED = "killed"
INTERNAL = "internal_error"


class EngineError(Exception):
    """An error the engine raises itself, already carrying its code (and maybe a suggestion)."""

    code = INTERNAL

    def __init__(self, message: str, *, suggestion: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.suggestion = suggestion
        self.details = details


class NanLossError(EngineError):
    code = NAN_LOSS


class ModelNotFoundError(EngineError):
    code = MODEL_NOT_FOUND


class ModelUnreadableError(EngineError):
    code = MODEL_UNREADABLE


class ChatTemplateMissingError(EngineError):
    code = NO_CHAT_TEMPLATE


class QLoRARequiresCUDAError(EngineError):
    code = QLORA_NEEDS_CUDA


class MissingDependencyError(EngineError):
    code = MISSING_DEPENDENCY


def _get(spec: Any, name: str, default: Any = None) -> Any:
    if spec is None:
        return default
    if isinstance(spec, dict):
        return spec.get(name, default)
    return getattr(spec, name, default)


def _n_devices(spec: Any) -> int:
    devices = _get(spec, "devices")
    return len(devices) if isinstance(devices, list | tuple) and devices else 1


def _memory_patch(spec: Any) -> dict[str, Any]:
    """The memory fix as spec changes: halve the per-device batch and raise gradient accumulation so
    the effective batch stays the same, and turn gradient checkpointing on; failing both, halve
    cutoff_len. Mirrors the first parts of `_memory_suggestion`."""
    patch: dict[str, Any] = {}
    bs = int(_get(spec, "per_device_train_batch_size", 0) or 0)
    ga = int(_get(spec, "gradient_accumulation_steps", 1) or 1)
    if bs > 1:
        new_bs = bs // 2
        patch["per_device_train_batch_size"] = new_bs
        patch["gradient_accumulation_steps"] = ga * bs // new_bs if bs % new_bs == 0 else ga * 2
    gc_on = bool(_get(spec, "gradient_checkpointing", False)) and not _get(
        spec, "disable_gradient_checkpointing", False
    )
    if not gc_on:
        patch["gradient_checkpointing"] = True
        if _get(spec, "disable_gradient_checkpointing", False):
            patch["disable_gradient_checkpointing"] = False
    cutoff = _get(spec, "cutoff_len")
    if not patch and isinstance(cutoff, int) and cutoff > 256:
        patch["cutoff_len"] = cutoff // 2
    return patch


def _nan_patch(spec: Any) -> dict[str, Any]:
    """The NaN fix as spec changes: a tenth of the learning rate, and gradient clipping if off."""
    patch: dict[str, Any] = {}
    lr = _get(spec, "learning_rate")
    if isinstance(lr, int | float) and not isinstance(lr, bool) and lr > 0:
        patch["learning_rate"] = lr / 10
    if not _get(spec, "max_grad_norm"):
        patch["max_grad_norm"] = 1.0
    return patch


def _with_patch(details: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return {**details, "spec_patch": patch} if patch else details


def _memory_suggestion(spec: Any, where: str) -> str:
    """'halve per-device batch size from 16 to 8 and double gradient accumulation to keep the
    effective batch at 64; or enable gradient checkpointing; or lower max length from 4096'."""
    parts: list[str] = []
    bs = int(_get(spec, "per_device_train_batch_size", 0) or 0)
    ga = int(_get(spec, "gradient_accumulation_steps", 1) or 1)
    if bs > 1:
        new_bs = bs // 2
        new_ga = ga * bs // new_bs if bs % new_bs == 0 else ga * 2
        eff = bs * ga * _n_devices(spec)
        parts.append(
            f"halve per_device_train_batch_size from {bs} to {new_bs} and raise gradient_accumulation_steps "
            f"from {ga} to {new_ga} to keep the effective batch at {eff}"
        )
    gc_on = bool(_get(spec, "gradient_checkpointing", False)) and not _get(
        spec, "disable_gradient_checkpointing", False
    )
    if not gc_on:
        parts.append("enable gradient_checkpointing")
    cutoff = _get(spec, "cutoff_len")
    if isinstance(cutoff, int) and cutoff > 256:
        parts.append(f"lower cutoff_len from {cutoff} to {cutoff // 2}")
    if where == "cuda":
        ft = _get(spec, "finetuning_type")
        qbit = _get(spec, "quantization_bit")
        if ft == "full":
            parts.append("use finetuning_type: lora")
        elif ft == "lora" and not qbit:
            parts.append("use QLoRA (quantization_bit: 4)")
    else:
        parts.append("close other programs or run on a machine with more RAM")
    if not parts:
        return "Use a smaller model or a machine with more memory."
    return "Try: " + "; or ".join(parts) + "."


def _exc_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    return chain


def classify(exc: BaseException, spec: Any = None) -> Failure:
    """Map an exception raised anywhere in a run to a `Failure`."""
    for e in _exc_chain(exc):
        found = _classify_one(e, spec)
        if found is not None:
            return found
    tb = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return Failure(
        INTERNAL,
        f"Training failed: {tb}",
        "See the log above for the traceback; if it is not caused by the spec or data, please report it.",
        {"exception": type(exc).__name__},
    )


def _classify_one(exc: BaseException, spec: Any) -> Failure | None:
    name = type(exc).__name__
    text = str(exc)
    low = text.lower()

    if isinstance(exc, EngineError):
        suggestion = exc.suggestion
        carried = dict(exc.details)
        if isinstance(exc, NanLossError):
            suggestion = suggestion or _nan_suggestion(spec)
            if spec is not None and "spec_patch" not in carried:
                carried = _with_patch(carried, _nan_patch(spec))
        return Failure(exc.code, exc.message, suggestion, carried)

    # Raised by the data layer (engine/data); recognised by name to keep this module import-light.
    if name == "NoValidRowsError":
        details: dict[str, Any] = {}
        source = getattr(exc, "stats", None) or exc  # engine/data keeps the counts on .stats
        for key in ("rows_read", "rows_kept", "rows_skipped", "first_errors"):
            val = getattr(source, key, None)
            if callable(val):
                val = val()
            if val is not None:
                details[key] = val if isinstance(val, int | str) else [str(x) for x in val][:5]
        return Failure(
            NO_VALID_ROWS,
            text or "No valid rows remained after formatting the dataset.",
            "Check that the dataset's format and column mapping match its rows (formatting: alpaca | "
            "sharegpt | ...; columns: ...), and that cutoff_len is long enough for the prompts "
            f"(now {_get(spec, 'cutoff_len', 'unset')}).",
            details,
        )
    if name == "SpecError":
        return Failure(INVALID_SPEC, text, "Fix the fields named above and submit the job again.")

    if name == "OutOfMemoryError" or "cuda out of memory" in low or "cuda error: out of memory" in low:
        return Failure(
            CUDA_OOM,
            "The GPU ran out of memory.",
            _memory_suggestion(spec, "cuda"),
            _with_patch({"error": text[:500]}, _memory_patch(spec) if spec is not None else {}),
        )
    if (
        isinstance(exc, MemoryError)
        or "defaultcpuallocator: can't allocate memory" in low
        or "defaultcpuallocator: not enough memory" in low
        or ("can't allocate memory" in low and "cpu" in low)
    ):
        return Failure(
            HOST_OOM,
            "The machine ran out of RAM.",
            _memory_suggestion(spec, "host"),
            _with_patch({"error": text[:500]}, _memory_patch(spec) if spec is not None else {}),
        )

    if ("chat_template" in low or "chat template" in low) and ("not set" in low or "no chat" in low):
        return _no_chat_template(spec)

    model = _get(spec, "model_name_or_path")
    if (
        isinstance(exc, OSError | ValueError)
        and model
        and (
            "does not appear to have a file named" in low
            or "is not a local folder and is not a valid model identifier" in low
            or "can't load" in low
            or "unrecognized model" in low
            or ("no such file or directory" in low and str(model) in text)
        )
    ):
        code = MODEL_NOT_FOUND if ("not a local folder" in low or "no such file" in low) else MODEL_UNREADABLE
        return Failure(
            code,
            f"Could not load the model from {model!r}: {text.splitlines()[0] if text else name}",
            "Check that model_name_or_path is a folder with config.json, the weights (*.safetensors) and "
            "the tokenizer files, or a Hub id that was downloaded into the model cache.",
        )
    if name in {"SafetensorError", "HeaderTooLarge"} or "error while deserializing header" in low:
        return Failure(
            MODEL_UNREADABLE,
            f"The model weights could not be read: {text[:300]}",
            "The weights file is truncated or corrupt; download or copy the model again.",
        )

    if isinstance(exc, FileNotFoundError):
        return Failure(
            DATA_NOT_FOUND,
            f"File not found: {exc.filename or text}",
            "Check dataset / dataset_dir / model_name_or_path paths in the spec.",
        )
    if isinstance(exc, ModuleNotFoundError):
        return Failure(
            MISSING_DEPENDENCY,
            f"A required package is not installed: {exc.name or text}",
            f"Install it into the engine's environment (pip install {exc.name or '...'}).",
        )
    if name in {"DistBackendError", "DistNetworkError"} or "processgroupgloo" in low or "nccl" in low:
        return Failure(
            DISTRIBUTED,
            f"Distributed training failed: {text[:300]}",
            "Another rank crashed or the devices are busy; check the other ranks' logs, "
            "or run on one device.",
        )
    return None


def _nan_suggestion(spec: Any) -> str:
    lr = _get(spec, "learning_rate")
    parts = []
    if isinstance(lr, int | float) and lr > 0:
        parts.append(f"lower learning_rate from {lr:g} to {lr / 10:g}")
    if _get(spec, "fp16"):
        parts.append("use bf16 or fp32 instead of fp16 (fp16 overflows easily)")
    mgn = _get(spec, "max_grad_norm")
    if not mgn:
        parts.append("set max_grad_norm: 1.0")
    wr = _get(spec, "warmup_ratio") or 0
    if not wr and not _get(spec, "warmup_steps"):
        parts.append("add warmup (warmup_ratio: 0.03)")
    parts.append("check the data for empty or extremely long rows")
    return "Try: " + "; or ".join(parts) + "."


def nan_loss(step: int, loss: float, spec: Any) -> NanLossError:
    return NanLossError(f"The training loss became {loss} at step {step}; training was stopped.", step=step)


def _no_chat_template(spec: Any) -> Failure:
    return Failure(
        NO_CHAT_TEMPLATE,
        f"The tokenizer of {_get(spec, 'model_name_or_path')!r} has no chat template, and template is "
        f"{_get(spec, 'template', 'auto')!r}.",
        "Set template to a named template that matches the model family (e.g. qwen, llama3, chatml, "
        "default), or use a chat/instruct model whose tokenizer has one.",
    )


def qlora_without_cuda(spec: Any) -> QLoRARequiresCUDAError:
    bits = _get(spec, "quantization_bit", 4)
    return QLoRARequiresCUDAError(
        f"QLoRA (quantization_bit: {bits}) needs a CUDA GPU, and none is available on this machine.",
        suggestion="Remove quantization_bit to train plain LoRA on this machine, "
        "or run the job on a GPU host.",
        spec_patch={"quantization_bit": None},
    )


def classify_exit(returncode: int, spec: Any = None) -> Failure | None:
    """For executors: explain a process that exited non-zero without an error event."""
    if returncode == 0:
        return None
    sig = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if sig == signal.SIGKILL:
        return Failure(
            HOST_OOM,
            "The training process was killed (SIGKILL), most likely by the kernel's out-of-memory killer.",
            _memory_suggestion(spec, "host"),
            _with_patch({"returncode": returncode}, _memory_patch(spec) if spec is not None else {}),
        )
    if sig == signal.SIGSEGV:
        return Failure(
            KILLED, "The training process crashed (segmentation fault).", None, {"returncode": returncode}
        )
    if sig:
        return Failure(
            KILLED, f"The training process was stopped by signal {sig}.", None, {"returncode": returncode}
        )
    return Failure(
        INTERNAL, f"The training process exited with code {returncode}.", None, {"returncode": returncode}
    )
