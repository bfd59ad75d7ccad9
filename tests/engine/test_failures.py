"""Failure classifier: synthetic exceptions -> stable codes, messages and spec-aware suggestions."""

from __future__ import annotations

import signal

import pytest

from loraforge.engine import failures as f
from loraforge.engine.spec_loading import load_spec


@pytest.fixture
def spec():
    return load_spec(
        {
            "model_name_or_path": "/models/qwen",
            "dataset": "identity",
            "per_device_train_batch_size": 16,
            "gradient_accumulation_steps": 4,
            "cutoff_len": 4096,
            "learning_rate": 2e-4,
            "finetuning_type": "lora",
        }
    )


class OutOfMemoryError(RuntimeError):  # same name as torch.OutOfMemoryError
    pass


def test_cuda_oom_suggestion_keeps_effective_batch(spec) -> None:
    fail = f.classify(OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), spec)
    assert fail.code == "cuda_oom"
    s = fail.suggestion or ""
    assert "from 16 to 8" in s and "from 4 to 8" in s and "effective batch at 64" in s
    assert "gradient_checkpointing" in s and "cutoff_len from 4096" in s and "quantization_bit" in s


def test_host_oom(spec) -> None:
    assert f.classify(MemoryError(), spec).code == "host_oom"
    exc = RuntimeError(
        "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried"
    )
    fail = f.classify(exc, spec)
    assert fail.code == "host_oom" and "from 16 to 8" in (fail.suggestion or "")


def test_oom_found_through_exception_chain(spec) -> None:
    try:
        try:
            raise OutOfMemoryError("CUDA out of memory")
        except OutOfMemoryError as inner:
            raise RuntimeError("step failed") from inner
    except RuntimeError as outer:
        assert f.classify(outer, spec).code == "cuda_oom"


def test_nan_loss(spec) -> None:
    fail = f.classify(f.NanLossError("loss became nan at step 3", step=3), spec)
    assert fail.code == "nan_loss" and "learning_rate from 0.0002 to 2e-05" in (fail.suggestion or "")
    assert fail.details == {"step": 3, "spec_patch": {"learning_rate": 2e-05}}


def test_memory_and_qlora_failures_carry_a_spec_patch(spec) -> None:
    """The suggested fix, machine-readable: a JSON merge patch for the job's spec (null removes a key)."""
    oom = f.classify(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), {
        "per_device_train_batch_size": 8, "gradient_accumulation_steps": 2,
    })  # fmt: skip
    assert oom.details["spec_patch"] == {
        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 4, "gradient_checkpointing": True,
    }  # fmt: skip
    host = f.classify(MemoryError(), {"per_device_train_batch_size": 1, "gradient_checkpointing": True,
                                      "cutoff_len": 2048})  # fmt: skip
    assert host.details["spec_patch"] == {"cutoff_len": 1024}
    qlora = f.classify(f.qlora_without_cuda({"quantization_bit": 4}))
    assert qlora.details["spec_patch"] == {"quantization_bit": None}
    assert "spec_patch" not in f.classify(ValueError("something else")).details


def test_no_valid_rows(spec) -> None:
    class Stats:
        rows_read = 10
        rows_kept = 0

        def first_errors(self) -> list[str]:
            return ["row 0: missing 'output'", "row 1: empty"]

    class NoValidRowsError(ValueError):
        stats = Stats()

    fail = f.classify(NoValidRowsError("0 of 10 rows usable"), spec)
    assert fail.code == "no_valid_rows"
    assert fail.details["rows_read"] == 10 and fail.details["first_errors"][0].startswith("row 0")
    assert "cutoff_len" in (fail.suggestion or "")


def test_model_files(spec) -> None:
    e1 = OSError("/models/qwen is not a local folder and is not a valid model identifier listed on hub")
    assert f.classify(e1, spec).code == "model_not_found"
    e2 = OSError("/models/qwen does not appear to have a file named model.safetensors")
    assert f.classify(e2, spec).code == "model_unreadable"
    assert f.classify(f.ModelUnreadableError("no config.json"), spec).code == "model_unreadable"

    class SafetensorError(Exception):
        pass

    assert f.classify(SafetensorError("Error while deserializing header: HeaderTooLarge"), spec).code == (
        "model_unreadable"
    )


def test_chat_template_and_qlora(spec) -> None:
    exc = ValueError("Cannot use chat template functions because tokenizer.chat_template is not set")
    fail = f.classify(exc, spec)
    assert fail.code == "no_chat_template" and "template" in (fail.suggestion or "")
    q = f.classify(f.qlora_without_cuda(spec), spec)
    assert q.code == "qlora_requires_cuda" and "quantization_bit" in (q.suggestion or "")


def test_spec_error_and_unknown(spec) -> None:
    from loraforge.engine.spec_loading import SpecError

    with pytest.raises(SpecError) as info:
        load_spec({"model_name_or_path": "x", "dataset": "d", "lerning_rate": 1})
    assert f.classify(info.value).code == "invalid_spec"
    unknown = f.classify(ZeroDivisionError("division by zero"), spec)
    assert unknown.code == "internal_error" and "ZeroDivisionError" in unknown.message
    assert set(unknown.event_data()) == {"code", "message", "suggestion", "details"}


def test_classify_exit() -> None:
    assert f.classify_exit(0) is None
    killed = f.classify_exit(-signal.SIGKILL)
    assert killed is not None and killed.code == "host_oom"
    assert f.classify_exit(137) is not None and f.classify_exit(137).code == "host_oom"  # type: ignore[union-attr]
    assert f.classify_exit(1).code == "internal_error"  # type: ignore[union-attr]


def test_classifier_without_spec() -> None:
    assert f.classify(MemoryError(), None).code == "host_oom"
