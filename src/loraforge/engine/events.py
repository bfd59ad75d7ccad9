"""The engine's event protocol: typed events, how they are written, and how they are read back.

The engine prints one JSON object per stdout line for machine events, prefixed with `MARKER` so
that no library's log line (tqdm, warnings, NCCL chatter) can be mistaken for one; every other
line is log text. The same events are appended to `RUN_DIR/events.jsonl` (without the marker).

This module is imported by the server, so it must stay torch-free (pydantic and stdlib only).

Reading side: `parse_line` turns any line into a typed event - a marked, valid event line becomes
its event; anything else (library noise, a garbled or half-written event line, a line that merely
*mentions* the marker) becomes a `LogEvent`. `LineStreamParser` does the same for a byte/str
stream arriving in arbitrary chunks (pipes, SSH channels, Ray log tails split lines anywhere).
"""

from __future__ import annotations

import codecs
import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

# Printable on purpose: Ray's and SSH's log relays may drop control characters. A library would
# have no reason to print this exact token at the start of a JSON object.
MARKER = "@@loraforge-event@@ "
EVENTS_FILE = "events.jsonl"

Status = Literal[
    "loading_model",
    "loading_data",
    "training",
    "evaluating",
    "exporting",  # an export job (engine/export) writing its files
    "verifying",  # ... and loading them back to compare with the source
    "saving",
    "succeeded",
    "failed",
    "cancelled",
]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
# Emitted by clocks and threads rather than by the run's course: dropped after the final status.
_PERIODIC = frozenset({"resource", "progress"})


class _Event(BaseModel):
    # extra="allow": a newer engine may add fields; an older server keeps and forwards them.
    model_config = ConfigDict(extra="allow")

    # seq is the engine's per-run counter; log lines that did not come from the engine have none
    # (the server orders them by arrival).
    seq: int | None = None
    ts: float = Field(default_factory=time.time, description="Unix time the event was produced.")


class StatusEvent(_Event):
    type: Literal["status"] = "status"
    status: Status
    message: str | None = None


class MetricEvent(_Event):
    type: Literal["metric"] = "metric"
    step: int
    total_steps: int | None = None
    epoch: float | None = None
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    samples_per_s: float | None = None
    tokens_total: int | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None
    progress: float | None = Field(default=None, description="0..1 fraction of total_steps done.")
    peak_rss_mb: float | None = None
    cuda_allocated_mb: float | None = None
    cuda_reserved_mb: float | None = None
    cuda_peak_allocated_mb: float | None = None
    gpu_util_pct: float | None = None
    mfu: float | None = Field(default=None, description="Model FLOPs utilisation, 6*N*tokens convention.")


class ProgressEvent(_Event):
    """Where training stands, after a step (at most about once a second; `engine/progress.py`),
    independent of `logging_steps`. Times, ETA and tokens/s are of the current attempt only."""

    type: Literal["progress"] = "progress"
    step: int
    total_steps: int | None = None
    epoch: float | None = None
    progress: float | None = Field(default=None, description="0..1 fraction of total_steps done.")
    elapsed_s: float | None = Field(default=None, description="Seconds since this attempt's training began.")
    eta_s: float | None = Field(default=None, description="Seconds left at this attempt's pace.")
    tokens_per_s: float | None = Field(
        default=None, description="Non-padding tokens per second since the last one."
    )
    tokens_total: int | None = None


class EvalEvent(_Event):
    type: Literal["eval"] = "eval"
    step: int
    eval_loss: float | None = None
    perplexity: float | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)


class CheckpointEvent(_Event):
    type: Literal["checkpoint"] = "checkpoint"
    step: int
    path: str
    metrics: dict[str, Any] = Field(default_factory=dict)


class ArtifactEvent(_Event):
    type: Literal["artifact"] = "artifact"
    kind: str = Field(description="adapter | full_model | merged_model | tokenizer | summary | ...")
    path: str


class LogEvent(_Event):
    type: Literal["log"] = "log"
    level: Literal["debug", "info", "warning", "error"] = "info"
    message: str


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    code: str
    message: str
    suggestion: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class GpuSample(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int = Field(description="The device's NVML index (host numbering, not CUDA_VISIBLE_DEVICES').")
    util_pct: float | None = None
    mem_used_mb: float | None = None
    mem_total_mb: float | None = None
    temp_c: float | None = None
    mem_peak_mb: float | None = Field(default=None, description="Highest mem_used_mb of the samples so far.")
    util_avg_pct: float | None = Field(default=None, description="Mean util_pct of the samples so far.")


class ResourceEvent(_Event):
    """A periodic sample of what the run uses (`engine/resources.py`); `gpus` is empty without NVML.
    The peak and average fields summarise every sample of this attempt so far, this one included, so
    the last sample of a finished run carries the run's summary."""

    type: Literal["resource"] = "resource"
    cpu_pct: float | None = Field(default=None, description="CPU of the process tree; 100 = one core.")
    rss_mb: float | None = Field(default=None, description="Resident memory of the process tree.")
    peak_rss_mb: float | None = Field(default=None, description="Highest resident memory so far (>= rss_mb).")
    cpu_avg_pct: float | None = Field(default=None, description="Mean cpu_pct of the samples so far.")
    gpus: list[GpuSample] = Field(default_factory=list)


Event = Annotated[
    StatusEvent
    | MetricEvent
    | ProgressEvent
    | EvalEvent
    | CheckpointEvent
    | ArtifactEvent
    | LogEvent
    | ErrorEvent
    | ResourceEvent,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EventType = Literal[
    "status", "metric", "progress", "eval", "checkpoint", "artifact", "log", "error", "resource"
]


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity; a non-finite number becomes null (the error event says why)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def encode(event: BaseModel) -> str:
    """One event as a compact JSON line (no marker, no newline)."""
    data = _finite(event.model_dump(mode="json", exclude_none=True))
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _last_seq(path: Path) -> int:
    """The highest seq already in an events file, so a resumed run keeps counting upwards."""
    if not path.exists():
        return 0
    last = 0
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                seq = json.loads(line).get("seq")
            except (ValueError, AttributeError):
                continue
            if isinstance(seq, int):
                last = max(last, seq)
    return last


class EventWriter:
    """Assigns seq/ts and writes each event to stdout (marked) and to RUN_DIR/events.jsonl.

    Thread-safe (the SIGTERM path and the watchdog emit from other threads). `enabled=False` makes
    every call a no-op: DDP ranks other than 0 get such a writer, so only rank 0 emits.
    """

    def __init__(self, run_dir: Path | None, *, stream: IO[str] | None = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self._stream = stream if stream is not None else sys.stdout
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._seq = 0
        self._stream_broken = False
        # After a terminal status nothing periodic may follow: readers stop at the final status, so a
        # late sample would sit in events.jsonl but never reach the database (a gap at the tail).
        self._finished = False
        if enabled and run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            path = run_dir / EVENTS_FILE
            self._seq = _last_seq(path)
            self._file = path.open("a", encoding="utf-8")

    @property
    def seq(self) -> int:
        return self._seq

    def emit(self, event_type: EventType, **data: Any) -> Event | None:
        if not self.enabled:
            return None
        with self._lock:
            if self._finished and event_type in _PERIODIC:
                return None
            self._seq += 1
            event = EVENT_ADAPTER.validate_python({"type": event_type, **_finite(data), "seq": self._seq})
            if isinstance(event, StatusEvent) and event.status in TERMINAL_STATUSES:
                self._finished = True
            line = encode(event)
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()
            if not self._stream_broken:
                try:
                    self._stream.write(MARKER + line + "\n")
                    self._stream.flush()
                except (OSError, ValueError):
                    # The reader (the server) went away: training must survive a server restart,
                    # and events.jsonl still has everything, so stop writing to stdout only.
                    self._stream_broken = True
            return event

    def status(self, status: Status, message: str | None = None) -> Event | None:
        return self.emit("status", status=status, message=message)

    def log(self, message: str, level: str = "info") -> Event | None:
        return self.emit("log", message=message, level=level)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


# ----------------------------------------------------------------------------------------------
# Reading


def _as_log(text: str) -> LogEvent:
    level: Literal["info", "warning", "error"] = "info"
    head = text.lstrip()[:40].lower()
    if head.startswith(("traceback", "error", "critical")) or "error:" in head:
        level = "error"
    elif "warning" in head:
        level = "warning"
    return LogEvent(message=text, level=level, seq=None)


def parse_line(line: str | bytes) -> Event:
    """Turn one line of engine output into a typed event; anything that is not a well-formed
    marked event (noise, a truncated event line, invalid fields) becomes a `LogEvent`."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.rstrip("\r\n")
    # tqdm redraws with \r: only the last segment is what a terminal would show.
    if "\r" in line:
        line = line.rsplit("\r", 1)[-1] or line.replace("\r", "")
    idx = line.find(MARKER)
    if idx != -1:
        # Relays may prefix lines ("(pid=123) ", timestamps); the marker may sit after them.
        payload = line[idx + len(MARKER) :]
        try:
            data = json.loads(payload)
            if isinstance(data, dict):
                return EVENT_ADAPTER.validate_python(data)
        except (ValueError, ValidationError):
            pass
    return _as_log(line)


def parse_lines(lines: Iterable[str | bytes]) -> Iterator[Event]:
    for line in lines:
        if isinstance(line, bytes):
            line = line.decode("utf-8", errors="replace")
        if line.strip():
            yield parse_line(line)


def read_events_file(path: Path) -> list[Event]:
    """Events from RUN_DIR/events.jsonl (lines there carry no marker); a torn last line is skipped."""
    out: list[Event] = []
    if not path.exists():
        return out
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                out.append(EVENT_ADAPTER.validate_json(line))
            except ValidationError:
                continue
    return out


class LineStreamParser:
    """Incremental parser for output arriving in arbitrary chunks.

    `feed()` returns the events of every line completed by the chunk; a trailing partial line is
    kept until the next chunk (or `close()`). Very long lines without a newline are flushed as log
    text at `max_line` characters so a runaway writer cannot grow memory without bound.
    """

    def __init__(self, max_line: int = 1 << 20) -> None:
        self._buf = ""
        # A UTF-8 sequence may be split across chunks; the incremental decoder holds the tail.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._max_line = max_line

    def feed(self, chunk: str | bytes) -> list[Event]:
        if isinstance(chunk, bytes):
            chunk = self._decoder.decode(chunk)
        self._buf += chunk
        events: list[Event] = []
        while True:
            nl = self._buf.find("\n")
            if nl == -1:
                break
            line, self._buf = self._buf[:nl], self._buf[nl + 1 :]
            if line.strip():
                events.append(parse_line(line))
        if len(self._buf) > self._max_line:
            events.append(_as_log(self._buf))
            self._buf = ""
        return events

    def close(self) -> list[Event]:
        rest = self._buf + self._decoder.decode(b"", final=True)
        self._buf = ""
        return [parse_line(rest)] if rest.strip() else []


def is_terminal(event: Event) -> bool:
    return isinstance(event, StatusEvent) and event.status in TERMINAL_STATUSES


def events_path(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / EVENTS_FILE
