"""What data preparation reports: rows read, kept and skipped per dataset, the first bad rows, token
counts, and the errors that carry them to the run log.

Plain dataclasses, so the tokenised-data cache stores them as JSON and reads them back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MAX_ERRORS_PER_DATASET = 5


class DataError(ValueError):
    """The data cannot be used as configured (wrong kind for the stage, missing files...)."""


@dataclass
class RowProblem:
    dataset: str
    row: int  # 0-based index in the file
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.dataset} row {self.row}: {self.field}: {self.message}"


@dataclass
class DatasetStats:
    name: str
    path: str
    format: str
    rows_read: int = 0
    rows_kept: int = 0
    rows_skipped: int = 0
    errors: list[RowProblem] = field(default_factory=list)

    def note(self, row: int, fld: str, message: str) -> None:
        self.rows_skipped += 1
        if len(self.errors) < MAX_ERRORS_PER_DATASET:
            self.errors.append(RowProblem(self.name, row, fld, message))


@dataclass
class DataStats:
    datasets: list[DatasetStats] = field(default_factory=list)
    eval_datasets: list[DatasetStats] = field(default_factory=list)
    train_examples: int = 0
    eval_examples: int = 0
    train_rows: int = 0  # rows the model sees (packs when packing)
    eval_rows: int = 0
    train_tokens: int = 0
    train_label_tokens: int = 0
    truncated_examples: int = 0
    dropped_examples: int = 0  # truncation: drop, or empty after truncation
    dropped_tokens: int = 0  # pretraining block remainder / truncation
    cache_hit: bool = False
    cache_key: str = ""

    @property
    def rows_read(self) -> int:
        return sum(d.rows_read for d in self.datasets)

    @property
    def rows_kept(self) -> int:
        return sum(d.rows_kept for d in self.datasets)

    @property
    def rows_skipped(self) -> int:
        return sum(d.rows_skipped for d in self.datasets)

    def first_errors(self, n: int = 10) -> list[RowProblem]:
        return [e for d in self.datasets + self.eval_datasets for e in d.errors][:n]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(rows_read=self.rows_read, rows_kept=self.rows_kept, rows_skipped=self.rows_skipped)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataStats:
        def ds(items: list[dict[str, Any]]) -> list[DatasetStats]:
            return [
                DatasetStats(**{**x, "errors": [RowProblem(**e) for e in x.get("errors", [])]}) for x in items
            ]

        keys = {f for f in cls.__dataclass_fields__} - {"datasets", "eval_datasets"}
        return cls(
            datasets=ds(d.get("datasets", [])),
            eval_datasets=ds(d.get("eval_datasets", [])),
            **{k: v for k, v in d.items() if k in keys},
        )


class NoValidRowsError(DataError):
    """No usable rows after formatting; the message has the counts and the first offending rows."""

    def __init__(self, stats: DataStats, what: str = "training") -> None:
        self.stats = stats
        lines = [
            f"no valid {what} rows: {stats.rows_read} read, {stats.rows_kept} kept, "
            f"{stats.rows_skipped} skipped"
        ]
        for d in stats.datasets:
            lines.append(f"  {d.name} ({d.format}, {d.path}): {d.rows_read} read, {d.rows_skipped} skipped")
        errors = stats.first_errors()
        if errors:
            lines.append("first problems:")
            lines += [f"  - {e}" for e in errors]
        super().__init__("\n".join(lines))
