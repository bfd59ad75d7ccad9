"""The executor Protocol: launch the engine on a prepared run directory, signal it, watch it, read its output.

Every executor runs `python -m loraforge.engine run RUN_DIR`; the engine appends its events to
`RUN_DIR/events.jsonl`, which the scheduler tails, so the event path is the same for all of them. The
engine's stdout and stderr end up in `RUN_DIR/engine.log` on every executor (the local one writes them
there directly, the Ray one mirrors Ray's job logs into it), so `stream_lines` reads that one file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

LOG_FILE = "engine.log"  # the engine's stdout and stderr, interleaved as written
DEFAULT_CHUNK_BYTES = 1 << 20  # at most this much log per stream_lines call


@dataclass(frozen=True)
class ProcessRef:
    """Identifies one engine process: a PID alone could be reused by another program."""

    pid: int
    started_at: float  # the process's start time (psutil create_time), seconds since the epoch
    external_id: str | None = None  # the executor's own id where it has one (Ray: submission id)


@dataclass(frozen=True)
class ProcessState:
    alive: bool
    returncode: int | None = None  # local: only for children this server reaped; Ray: from its job status


@dataclass(frozen=True)
class LogChunk:
    """Complete lines of engine output read from a byte offset of `engine.log`.

    `offset` is where the next call continues (just after the last complete line returned). A line still
    being written (no newline yet) is held back until it is complete, unless it alone fills a whole chunk.
    `reset` is true when the asked offset lay beyond the end of the file (it was replaced): the lines
    then start at byte 0.
    """

    lines: list[str] = field(default_factory=list)
    offset: int = 0
    reset: bool = False


def read_log_lines(run_dir: Path, offset: int = 0, *, max_bytes: int = DEFAULT_CHUNK_BYTES) -> LogChunk:
    """The complete lines of `run_dir/engine.log` from byte `offset` on (at most about `max_bytes`)."""
    path = run_dir / LOG_FILE
    offset = max(0, int(offset))
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            reset = offset > size
            start = 0 if reset else offset
            fh.seek(start)
            data = fh.read(max(1, max_bytes))
    except FileNotFoundError:
        return LogChunk(lines=[], offset=0, reset=offset > 0)
    complete = data.rfind(b"\n") + 1
    if complete == 0 and len(data) >= max_bytes:
        complete = len(data)  # one line longer than a chunk: hand it out in pieces rather than stall
    text = data[:complete].decode("utf-8", errors="replace")
    return LogChunk(lines=text.splitlines(), offset=start + complete, reset=reset)


class EngineLogReader:
    """`stream_lines` for executors whose engine output ends up in `RUN_DIR/engine.log` (all of them:
    the local one has the engine write it, the Ray one mirrors Ray's job logs into it)."""

    def stream_lines(
        self,
        run_dir: Path,
        offset: int = 0,
        *,
        ref: ProcessRef | None = None,
        max_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> LogChunk:
        """The engine's output lines since byte `offset`, read from engine.log."""
        return read_log_lines(run_dir, offset, max_bytes=max_bytes)


class Executor(Protocol):
    name: str

    def launch(
        self, *, job_id: int, run_dir: Path, env: dict[str, str], num_gpus: int = 0, node: str | None = None
    ) -> ProcessRef:
        """Start the engine on `run_dir` (its spec.json is written); return at once.

        `env` is the environment the server prepared (an executor may pass on only what the engine
        needs); `num_gpus` is the job's GPU demand (0: CPU only, or not known to the caller); `node`
        is the executor's own id of the node placement chose (`nodes.external_id`; Ray: the node id),
        None where the executor places the job itself (or has one node).
        """
        ...

    def stop(self, ref: ProcessRef) -> None:
        """Graceful: the engine checkpoints and reports `cancelled`, which ends a stopping job as
        `stopped` (the watcher decides that, not the executor)."""
        ...

    def cancel(self, ref: ProcessRef) -> None:
        """Immediate: kill the engine and everything it started."""
        ...

    def state(self, ref: ProcessRef) -> ProcessState:
        """Whether the process is alive. Also the reattach: works from a stored ref after a server
        restart (local: PID + start time; Ray: submission id), resuming whatever the executor keeps
        going per job (the Ray log mirror)."""
        ...

    def stream_lines(
        self,
        run_dir: Path,
        offset: int = 0,
        *,
        ref: ProcessRef | None = None,
        max_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> LogChunk:
        """The engine's output lines since byte `offset` (pass back `LogChunk.offset` for the next ones)."""
        ...
