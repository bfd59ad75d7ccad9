"""Batches of test rows, longest first, sized by a row count or by a token budget.

Sorting by length keeps padding small (every padded position costs compute on every step); longest
first puts the largest batch, and any out-of-memory error, at the start rather than at the end.

Without a fixed `per_device_eval_batch_size`, a batch holds as many rows as fit `max_batch_tokens`
(prompt plus the tokens it may generate, i.e. the KV cache it can grow to), capped at
`MAX_AUTO_BATCH`. Each decoding step of a small model costs about the same whatever the batch size
(the per-step overhead dominates), so short prompts go in large batches and long ones in small.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
MAX_AUTO_BATCH = 64


@dataclass(frozen=True)
class BatchPlan:
    batch_size: int | None  # fixed rows per batch, or None: by token budget
    token_budget: int

    def split(self, rows: Sequence[T], length: Callable[[T], int], *, new_tokens: int = 0) -> list[list[T]]:
        """`rows` sorted by length (longest first, ties in the given order) and cut into batches."""
        ordered = sorted(rows, key=lambda row: -length(row))
        batches: list[list[T]] = []
        start = 0
        while start < len(ordered):
            size = self.batch_size or max(
                1, min(MAX_AUTO_BATCH, self.token_budget // (length(ordered[start]) + new_tokens))
            )
            batches.append(ordered[start : start + size])
            start += size
        return batches
