"""The Ray executor (issue 5): the engine entrypoint submitted through the Ray Jobs API."""

from __future__ import annotations

from pathlib import Path

from loraforge.executors.base import ProcessRef, ProcessState
from loraforge.settings import Settings


class RayExecutor:  # filled in by the Ray work; make_executor only constructs it when configured
    name = "ray"

    def __init__(self, settings: Settings) -> None:
        raise NotImplementedError("the Ray executor is not implemented yet")

    def launch(self, *, job_id: int, run_dir: Path, env: dict[str, str]) -> ProcessRef:
        raise NotImplementedError

    def stop(self, ref: ProcessRef) -> None:
        raise NotImplementedError

    def cancel(self, ref: ProcessRef) -> None:
        raise NotImplementedError

    def state(self, ref: ProcessRef) -> ProcessState:
        raise NotImplementedError
