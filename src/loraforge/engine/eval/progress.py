"""Progress of an evaluation as metric events: samples done of all samples, rate and ETA.

One event per batch, through the engine's event protocol (`engine/events.py`), so a queued
evaluation shows progress the way a training job does: `step` counts samples (across the passes
the spec asks for), `total_steps` is every sample of every pass.
"""

from __future__ import annotations

import time

from loraforge.engine.events import EventWriter


class Progress:
    def __init__(self, writer: EventWriter, total: int, done: int = 0) -> None:
        self.writer = writer
        self.total = total
        self.done = done
        self._resumed_from = done
        self._tokens = 0
        self._started = time.perf_counter()

    def advance(self, samples: int, tokens: int = 0) -> None:
        self.done += samples
        self._tokens += tokens
        elapsed = time.perf_counter() - self._started
        rate = (self.done - self._resumed_from) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else None
        self.writer.emit(
            "metric",
            step=self.done,
            total_steps=self.total,
            progress=round(self.done / self.total, 4) if self.total else 1.0,
            elapsed_s=round(elapsed, 3),
            eta_s=round(eta, 3) if eta is not None else None,
            samples_per_s=round(rate, 3),
            tokens_per_s=round(self._tokens / elapsed, 2) if tokens and elapsed > 0 else None,
            tokens_total=self._tokens or None,
        )
