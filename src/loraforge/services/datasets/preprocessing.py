"""Preprocessing a dataset version (clean, filter, dedupe, mask, tokenize, split) into a new version
with a report, or, as a dry run, the first rows before and after and the report the real run would
give, with nothing created. The row transformations themselves are `loraforge.datastore.preprocess`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from loraforge.datastore import paths
from loraforge.datastore import preprocess as prep
from loraforge.datastore.ingest import WriteResult, new_staging_dir, remove_tree, write_examples
from loraforge.db.models import Dataset, DatasetVersion, User
from loraforge.errors import InvalidInput
from loraforge.services.datasets.catalog import folder_of, get_dataset, version_of
from loraforge.services.datasets.reads import tokenizer_file
from loraforge.services.datasets.staging import disk_error
from loraforge.services.datasets.versions import NewVersion, commit_version
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

# A dry run runs the filters over every row (tens of microseconds a row) up to this many rows or
# this long, whichever comes first, and then scales its counts up from the rows it read: someone
# is waiting for the answer.
DRY_RUN_SCAN_ROWS = 200_000
DRY_RUN_SCAN_SECONDS = 10.0


@dataclass(frozen=True)
class PreprocessOutcome:
    report: dict[str, Any]
    samples: list[dict[str, Any]]
    dataset: Dataset | None = None
    version: DatasetVersion | None = None
    estimate: prep.Estimate | None = None


def _load_tokenizer(settings: Settings, name: str) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tokenizer_file(settings, name)))


def preprocess(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    dataset_id: int,
    version_id: int | None,
    options: prep.Options,
    dry_run: bool,
    dry_run_rows: int,
    message: str,
    recipe_options: dict[str, Any],
    ip: str | None,
) -> PreprocessOutcome:
    dataset = get_dataset(session, actor=actor, dataset_id=dataset_id, write=not dry_run)
    version = version_of(session, dataset, version_id)
    tokenizer = _load_tokenizer(settings, options.tokenizer) if options.tokenizer else None
    processor = prep.Processor(options, kind=version.format, tokenizer=tokenizer)
    source = folder_of(settings, version) / paths.NORMALIZED

    if dry_run:
        return _dry_run(
            processor, source, rows=dry_run_rows, rows_in=version.valid_rows, val_ratio=options.val_ratio
        )

    staging = new_staging_dir(settings.data_dir)
    original_rows, written = _write_processed(processor, source, staging, options, kind=version.format)
    report: dict[str, Any] = {
        "original_rows": original_rows,
        "processed_rows": written.rows,
        "removed": dict(processor.removed),
    }
    if "splits" in written.stats:
        report["splits"] = written.stats["splits"]
    if tokenizer is not None and options.tokenize:
        report["tokens"] = processor.tokens
    if written.rows == 0:
        remove_tree(staging)
        raise InvalidInput(
            f"preprocessing would remove every row ({report['removed']}); nothing was created",
            code="no_rows_left",
        )
    new = NewVersion(
        recipe={
            "kind": "preprocess",
            "options": recipe_options,
            "from_version": version.number,
            "report": report,
        },
        message=message or "preprocess",
        counts={"rows": written.rows, "valid_rows": written.rows, "invalid_rows": 0},
        format=version.format,
        sha256=written.sha256,
        size_bytes=written.normalized_bytes,
        normalized_bytes=written.normalized_bytes,
        mapping=version.mapping,
        detection=version.detection,
    )
    dataset, created = commit_version(
        session, settings=settings, actor=actor, staging=staging, new=new, dataset=dataset, name=dataset.name,
        description=dataset.description, action=AuditAction.dataset_preprocessed, ip=ip,
    )  # fmt: skip
    return PreprocessOutcome(report=report, samples=[], dataset=dataset, version=created)


def _dry_run(
    processor: prep.Processor, source: Path, *, rows: int, rows_in: int, val_ratio: float | None
) -> PreprocessOutcome:
    """The first `rows` rows before and after, and what the real run would report: the same filters
    over every row (dedupe remembers every earlier row, as it will), or over the first rows read
    within DRY_RUN_SCAN_ROWS and DRY_RUN_SCAN_SECONDS with the counts scaled up to the whole version."""
    samples: list[dict[str, Any]] = []
    scanned = 0
    deadline = time.monotonic() + DRY_RUN_SCAN_SECONDS
    for example in prep.read(source):
        shown = scanned < rows
        if not shown and (
            scanned >= DRY_RUN_SCAN_ROWS or (scanned % 1000 == 0 and time.monotonic() > deadline)
        ):
            break
        after, reason = processor.apply(example, tokenize=shown)
        scanned += 1
        if reason:
            processor.removed[reason] += 1
        if shown:
            samples.append({"row": example.get("row"), "before": example, "after": after, "removed": reason})
    else:
        rows_in = scanned  # every row was read: the count is exact, whatever the version row says
    found = prep.estimate(processor.removed, sample_rows=scanned, rows_in=rows_in, val_ratio=val_ratio)
    return PreprocessOutcome(report=found.report(), samples=samples, estimate=found)


def _write_processed(
    processor: prep.Processor, source: Path, staging: Path, options: prep.Options, *, kind: str
) -> tuple[int, WriteResult]:
    """Run every row of `source` through `processor` into `staging` (a version's files), assigning
    validation splits when asked: (rows read, what was written). `staging` is removed on failure."""
    try:
        counted = {"n": 0}

        def originals() -> Iterator[dict[str, Any]]:
            for example in prep.read(source):
                counted["n"] += 1
                yield example

        processed: Any = processor.run(originals())
        if options.val_ratio:
            # assign_splits picks exactly round(total * val_ratio) rows: it needs the surviving count first.
            temporary = staging / "processed.tmp"
            kept = 0
            with temporary.open("w", encoding="utf-8") as out:
                for example in processed:
                    out.write(json.dumps(example, ensure_ascii=False) + "\n")
                    kept += 1
            processed = prep.assign_splits(
                prep.read(temporary), total=kept, val_ratio=options.val_ratio, seed=options.seed
            )
            written = write_examples(processed, staging, kind=kind)
            temporary.unlink()
        else:
            written = write_examples(processed, staging, kind=kind)
    except OSError as exc:
        remove_tree(staging)
        raise disk_error(exc) or exc from None
    except BaseException:
        remove_tree(staging)
        raise
    return counted["n"], written
