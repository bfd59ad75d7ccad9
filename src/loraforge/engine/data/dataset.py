"""Tokenised rows in flat numpy arrays (compact, cacheable) and a length-grouped batch sampler."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np


class TokenizedDataset:
    """Rows of input_ids / labels (and position_ids for neat packing) stored as flat int32 arrays.

    A map-style dataset for `torch.utils.data.DataLoader` / `transformers.Trainer`: item i is a dict
    of int lists. Flat arrays keep 100k-row datasets small in memory and fast to cache with `np.save`.
    """

    def __init__(
        self,
        input_ids: np.ndarray,
        labels: np.ndarray,
        offsets: np.ndarray,
        position_ids: np.ndarray | None = None,
    ) -> None:
        self.input_ids = input_ids
        self.labels = labels
        self.offsets = offsets
        self.position_ids = position_ids

    @classmethod
    def from_rows(
        cls,
        rows_ids: Sequence[Sequence[int]],
        rows_labels: Sequence[Sequence[int]],
        rows_positions: Sequence[Sequence[int]] | None = None,
    ) -> TokenizedDataset:
        lengths = np.fromiter((len(r) for r in rows_ids), dtype=np.int64, count=len(rows_ids))
        offsets = np.zeros(len(rows_ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])

        def flat(rows: Sequence[Sequence[int]]) -> np.ndarray:
            out = np.empty(int(offsets[-1]), dtype=np.int32)
            for i, r in enumerate(rows):
                out[offsets[i] : offsets[i + 1]] = r
            return out

        positions = flat(rows_positions) if rows_positions is not None else None
        return cls(flat(rows_ids), flat(rows_labels), offsets, positions)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        if i < 0:
            i += len(self)
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        item = {"input_ids": self.input_ids[a:b].tolist(), "labels": self.labels[a:b].tolist()}
        if self.position_ids is not None:
            item["position_ids"] = self.position_ids[a:b].tolist()
        return item

    @property
    def lengths(self) -> list[int]:
        """Tokens per row (what length grouping sorts by)."""
        return np.diff(self.offsets).tolist()

    @property
    def num_tokens(self) -> int:
        return int(self.offsets[-1])

    @property
    def num_label_tokens(self) -> int:
        return int((self.labels != -100).sum())

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {"input_ids": self.input_ids, "labels": self.labels, "offsets": self.offsets}
        if self.position_ids is not None:
            arrays["position_ids"] = self.position_ids
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> TokenizedDataset:
        with np.load(path) as z:
            pos = z["position_ids"] if "position_ids" in z.files else None
            return cls(z["input_ids"], z["labels"], z["offsets"], pos)


class LengthGroupedBatchSampler:
    """Batches of similar-length rows, in random order, covering every row exactly once per epoch.

    Shuffle with the seed (+ epoch), cut into mega-batches of `batch_size * mega_factor` rows, sort
    each by length (longest first) and cut into batches; then shuffle the batches, keeping the one
    with the longest row first so an out-of-memory shows up at step one, not mid-run.
    Set `set_epoch(n)` each epoch for a new order (deterministic for seed and epoch).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        seed: int = 0,
        mega_factor: int = 50,
        drop_last: bool = False,
    ) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.mega = max(batch_size * mega_factor, batch_size)
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        perm = rng.permutation(len(self.lengths))
        batches: list[list[int]] = []
        for start in range(0, len(perm), self.mega):
            mega = perm[start : start + self.mega]
            mega = mega[np.argsort(-self.lengths[mega], kind="stable")]
            batches += [mega[i : i + self.batch_size].tolist() for i in range(0, len(mega), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if not batches:
            return iter(())
        longest = max(range(len(batches)), key=lambda b: int(self.lengths[batches[b]].max()))
        first = batches.pop(longest)
        order = rng.permutation(len(batches))
        return iter([first, *(batches[i] for i in order)])
