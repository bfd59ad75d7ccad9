"""No bf16/fp16 on a CPU run: a job that will train on the CPU gets `precision: fp32` at submit.

Half-precision autocast on a CPU is slower than fp32 on most hosts and changes the loss; fp16 autocast
does not exist there at all (the engine already falls back to fp32 for it, and `auto` means fp32 on a
CPU). Whether a job runs on the CPU is the scheduler's rule (`gpu_fit.demand`): `devices: cpu`, or
`auto` on a node without GPUs. The stored spec then says what really runs; the change is recorded in
the job's audit entry, and the engine's model-loading log line names the precision it trains in.
"""

from __future__ import annotations

from typing import Any

from loraforge.services.jobs import gpu_fit
from loraforge.settings import Settings

_HALF = ("bf16", "fp16")


def requested_half(spec: dict[str, Any]) -> str | None:
    """`bf16` / `fp16` when the spec asks for half precision (LF flags included), else None."""
    precision = spec.get("precision")
    if precision in _HALF:
        return str(precision)
    return next((flag for flag in _HALF if spec.get(flag) is True), None)


def fit_to_device(settings: Settings, spec: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The spec to store, and a note when half precision was turned into fp32 for a CPU run."""
    half = requested_half(spec)
    if half is None or gpu_fit.demand(spec, gpu_fit.inventory(settings)) > 0:
        return spec, None
    fitted = {key: value for key, value in spec.items() if key not in _HALF}
    fitted["precision"] = "fp32"
    return fitted, f"precision {half} became fp32: this job trains on the CPU"
