"""Group tokenised examples into rows of at most cutoff_len tokens (LLaMA-Factory-style packing)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence


def greedy_knapsack(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices grouped into packs whose total length is ≤ capacity.

    Fill each pack with the longest remaining example that still fits, then the next longest that
    fits the remaining room, and so on (first-fit decreasing). Packs come out in a deterministic
    order; the sampler shuffles them later.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    sorted_lengths = [lengths[i] for i in order]
    packs: list[list[int]] = []
    while order:
        room = capacity
        pack: list[int] = []
        while order:
            # the longest remaining example that fits into `room`
            pos = bisect.bisect_right(sorted_lengths, room) - 1
            if pos < 0:
                break
            room -= sorted_lengths[pos]
            pack.append(order.pop(pos))
            sorted_lengths.pop(pos)
        if not pack:  # an example longer than capacity: alone in its pack (already truncated upstream)
            pack.append(order.pop())
            sorted_lengths.pop()
        packs.append(pack)
    return packs


def chunk_stream(ids: Sequence[int], block: int) -> list[list[int]]:
    """Split one long token stream into full blocks, dropping the ragged tail (LF pretraining)."""
    usable = len(ids) // block * block
    return [list(ids[i : i + block]) for i in range(0, usable, block)]
