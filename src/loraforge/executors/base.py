"""The executor Protocol: launch the engine on a prepared run directory, signal it, watch it.

Every executor runs `python -m loraforge.engine run RUN_DIR`; the engine appends its events to
`RUN_DIR/events.jsonl`, which the scheduler tails, so the event path is the same for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

LOG_FILE = "engine.log"  # the engine's stdout and stderr, interleaved as written


@dataclass(frozen=True)
class ProcessRef:
    """Identifies one engine process: a PID alone could be reused by another program."""

    pid: int
    started_at: float  # the process's start time (psutil create_time), seconds since the epoch
    external_id: str | None = None  # the executor's own id where it has one (Ray: submission id)


@dataclass(frozen=True)
class ProcessState:
    alive: bool
    returncode: int | None = None  # known only for processes this server started and reaped


class Executor(Protocol):
    name: str

    def launch(self, *, job_id: int, run_dir: Path, env: dict[str, str]) -> ProcessRef:
        """Start the engine on `run_dir` (its spec.json is written); return at once."""
        ...

    def stop(self, ref: ProcessRef) -> None:
        """Graceful: the engine checkpoints and reports `cancelled`."""
        ...

    def cancel(self, ref: ProcessRef) -> None:
        """Immediate: kill the engine and everything it started."""
        ...

    def state(self, ref: ProcessRef) -> ProcessState:
        """Whether the process is alive (after a server restart too: PID + start time)."""
        ...
