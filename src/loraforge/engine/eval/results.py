"""Per-sample results stored as they are produced, so a restarted evaluation continues where it stopped.

Each pass (generation, perplexity, multiple choice) appends one JSON line per sample to its own file in
the output folder, keyed by the sample's index in the test set, and flushes after every batch. On
start, the lines already there are read back and those samples are skipped. A process killed while
writing leaves at most one torn line at the end: it is cut off before anything is appended.

`eval_state.json` holds what decides the answers (model, data, decoding: `EvalSpec.generation_fingerprint`).
Resuming into a folder whose state differs would mix answers of two evaluations, so it is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATE_FILE = "eval_state.json"


class ResumeMismatchError(ValueError):
    """output_dir holds results of a different evaluation."""


def parse_records(data: bytes) -> dict[int, dict[str, Any]]:
    """Records by index from JSONL bytes; the last line of an index wins, unreadable lines are skipped."""
    records: dict[int, dict[str, Any]] = {}
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("index"), int):
            records[record["index"]] = record
    return records


def read_records(path: Path) -> dict[int, dict[str, Any]]:
    """Another run's results, read without touching the file."""
    return parse_records(path.read_bytes())


def is_answer(record: dict[str, Any]) -> bool:
    """A generated sample another job may reuse: it has an answer and a reference, and no error."""
    return (
        "error" not in record
        and isinstance(record.get("predict"), str)
        and isinstance(record.get("label"), str)
    )


class ResultStore:
    """An append-only JSONL of per-sample records with an integer `index`; resumable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[int, dict[str, Any]] = {}
        if path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a torn last line: drop it, or the next append would glue onto it
            with self.path.open("r+b") as fh:
                fh.truncate(end)
        self.records = parse_records(data[:end])

    def __contains__(self, index: int) -> bool:
        return index in self.records

    def __len__(self) -> int:
        return len(self.records)

    def append(self, records: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())
        for r in records:
            self.records[r["index"]] = r

    def compact(self, keep: set[int] | None = None) -> None:
        """Rewrite the file with one line per index (the latest), in index order, atomically.

        Rescoring and judging append updated records; readers of a finished run then see each
        sample once. `keep`: only these indices (seeded answers beyond this test set are dropped).
        """
        if keep is not None:
            self.records = {i: r for i, r in self.records.items() if i in keep}
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for record in self.ordered():
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def ordered(self) -> list[dict[str, Any]]:
        return [self.records[i] for i in sorted(self.records)]


def check_state(output_dir: Path, fingerprint: dict[str, Any]) -> bool:
    """Write the state on a fresh folder; on an existing one, True when it matches (resume).

    Raises ResumeMismatchError when the folder belongs to another evaluation.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / STATE_FILE
    current = json.loads(json.dumps(fingerprint))  # normalised as it would read back
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            previous = None
        if previous == current:
            return True
        changed = sorted(
            k for k in set(current) | set(previous or {}) if (previous or {}).get(k) != current.get(k)
        )
        raise ResumeMismatchError(
            f"output_dir {str(output_dir)!r} holds results of a different evaluation "
            f"(changed: {', '.join(changed) or 'unreadable state'}); use a new output_dir or empty this one"
        )
    path.write_text(json.dumps(current, indent=1), encoding="utf-8")
    return False
