"""Per-step progress of one training attempt: step, elapsed time, ETA and tokens/s, at most about once
a second, whatever `logging_steps` says (the callback emits it as a `progress` event).

Everything is measured over THIS attempt: a resumed run starts its clock when training starts again,
so neither the time spent by earlier attempts nor the steps they did make the ETA look better or worse.
The pace is taken from the first step this attempt finished: the time before it (the first batch,
warm-up, a resumed run skipping the batches its checkpoint already saw) is not what the remaining
steps will cost.

Torch-free: the arithmetic is tested on its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

INTERVAL_ENV = "LORAFORGE_PROGRESS_INTERVAL_S"
DEFAULT_INTERVAL_S = 1.0


def interval_from_env(default: float = DEFAULT_INTERVAL_S) -> float:
    """The minimum seconds between two progress events (0: one per step)."""
    try:
        value = float(os.environ.get(INTERVAL_ENV, default))
    except ValueError:
        return default
    return max(0.0, value)


def eta_seconds(*, step: int, total: int, pace_step: int, pace_t: float, now: float) -> float | None:
    """Seconds left at the pace of the steps done since (`pace_step`, `pace_t`) - the origin of this
    attempt's measurement; None while no step has been timed or without a known total."""
    done = step - pace_step
    if total <= 0 or done <= 0:
        return None
    return max(0.0, (now - pace_t) / done * max(total - step, 0))


@dataclass
class ProgressClock:
    """The clock of one attempt. `begin` when training (re)starts; `tick` at every step end returns
    the fields of a progress event, or None when the last one was sent under `interval_s` ago."""

    interval_s: float = DEFAULT_INTERVAL_S
    start_t: float = 0.0
    start_step: int = 0
    pace_t: float = 0.0  # origin of the pace: train start, then the end of this attempt's first step
    pace_step: int = 0
    last_t: float | None = None  # the last progress sent, for rate limiting and tokens/s
    last_tokens: int = 0

    def begin(self, *, step: int, tokens: int, now: float) -> None:
        self.start_t = self.pace_t = now
        self.start_step = self.pace_step = step
        self.last_tokens = tokens
        self.last_t = None

    def eta(self, step: int, total: int, now: float) -> float | None:
        """At the pace since the attempt's first step; at that step itself, since the train start."""
        if step > self.pace_step:
            return eta_seconds(step=step, total=total, pace_step=self.pace_step, pace_t=self.pace_t, now=now)
        return eta_seconds(step=step, total=total, pace_step=self.start_step, pace_t=self.start_t, now=now)

    def tick(self, *, step: int, total: int, tokens: int, now: float) -> dict[str, Any] | None:
        if self.last_t is None:
            # The attempt's first step is always shown (its ETA counts from the train start); the
            # pace is measured from its end on.
            sample = self._emit(step, total, tokens, now, self.eta(step, total, now))
            self.pace_t, self.pace_step = now, step
            return sample
        finished = total > 0 and step >= total
        if not finished and now - self.last_t < self.interval_s:
            return None
        return self._emit(step, total, tokens, now, self.eta(step, total, now))

    def _emit(self, step: int, total: int, tokens: int, now: float, eta: float | None) -> dict[str, Any]:
        since = self.last_t if self.last_t is not None else self.start_t
        window = now - since
        tokens_per_s = (
            (tokens - self.last_tokens) / window if window > 0 and tokens > self.last_tokens else None
        )
        self.last_t, self.last_tokens = now, tokens
        return {
            "step": step,
            "total_steps": total or None,
            "progress": min(step / total, 1.0) if total > 0 else None,
            "elapsed_s": round(now - self.start_t, 3),
            "eta_s": round(eta, 1) if eta is not None else None,
            "tokens_per_s": round(tokens_per_s, 1) if tokens_per_s is not None else None,
            "tokens_total": tokens or None,
        }
